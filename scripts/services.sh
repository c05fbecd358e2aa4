# Real services for the tests, started on loopback under .mesh-test/ (git-ignored).
# Sourced by scripts/test.sh; needs Python 3 (with venv), Node.js with npm, and network
# access to PyPI, npm and Debian's packages the first time. Idempotent: a second run reuses the virtualenv and data directory.
#
#   PostgreSQL 16 + pgvector  PyPI `pgserver` (server binaries and the vector extension)
#   SQS                       PyPI `moto[server]` (the SQS JSON protocol, DLQ redrive)
#   OpenAPI validation        PyPI `openapi-spec-validator`
#   MCP's Python SDK          PyPI `mcp[ws]` (a real third-party MCP WebSocket client)
#   Chromium + playwright-core Debian's `chromium` (apt, as root), npm's `playwright-core`
#                             and `axe-core` (npm ci in examples/dashboard)
#   promtool                  Debian's `prometheus` (apt, as root)
#   Redis                     Debian's `redis-server` (apt, as root): shared tool limits
#
# Exports for the tests:
#   MESH_TEST_DATABASE_URL   postgres://…@127.0.0.1:PORT/mesh_test
#   MESH_TEST_SQS_ENDPOINT   http://127.0.0.1:PORT (with dummy AWS credentials)
#   MESH_TEST_REDIS_URL      redis://127.0.0.1:PORT
#   MESH_TEST_SERVICES=1     tests that need a service fail, not skip, without it

MESH_TEST_DIR="${MESH_TEST_DIR:-$PWD/.mesh-test}"
export MESH_TEST_DIR
MESH_PG_USER="${MESH_PG_USER:-mesh-pg}"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # description, command...
    local what=$1; shift
    for _ in $(seq 1 150); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "$what did not come up" >&2
    return 1
}

services_install() {
    local venv="$MESH_TEST_DIR/venv"
    if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/openapi-spec-validator" ] || [ ! -d "$(pg_root "$venv")/bin" ] \
        || ! "$venv/bin/python" -c 'import mcp.client.websocket, websockets' 2>/dev/null; then
        echo "installing pgserver, moto[server], openapi-spec-validator and mcp[ws] into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check 'pgserver==0.1.4' 'moto[server]>=5,<6' \
            'openapi-spec-validator>=0.7,<1' 'mcp[ws]>=1.9,<2'
    fi
}

# Debian packages some tests run: chromium (the dashboard's browser tests) and promtool
# (package prometheus: the metrics exposition's checker). Installed when missing, as
# root; then the browser tests' npm packages (npm ci: pinned by
# examples/dashboard/package-lock.json).
test_tools_install() {
    local missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -x /usr/bin/promtool ] || missing+=(prometheus)
    [ -x /usr/bin/redis-server ] || missing+=(redis-server)
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "installing ${missing[*]} (Debian's packages) for the tests"
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
                || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
        else
            echo "the tests need Debian's packages: apt-get install ${missing[*]}" >&2
            return 1
        fi
    fi
    local dir=examples/dashboard
    if [ ! -d "$dir/node_modules/playwright-core" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        echo "installing the dashboard tests' npm packages (npm ci in $dir)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# The pgserver install's root (bin/, lib/, share/); empty before it is installed.
pg_root() {
    [ -x "$1/bin/python" ] || return 0
    "$1/bin/python" -c 'import os, pgserver; print(os.path.join(os.path.dirname(pgserver.__file__), "pginstall"))' 2>/dev/null || true
}

# Runs a PostgreSQL command as the unprivileged user (PostgreSQL refuses root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$MESH_PG_USER" -- "$@"
    else
        "$@"
    fi
}

postgres_start() {
    local pg; pg="$(pg_root "$MESH_TEST_DIR/venv")"
    local data; data="$(pg_data)"
    local port; port="$(free_port)"
    if [ "$(id -u)" = 0 ]; then
        mkdir -p "$data"
        chown -R "$MESH_PG_USER" "$data"
        chmod 700 "$data"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        as_pg "$pg/bin/initdb" -D "$data" -U postgres -A trust --no-sync --locale=C -E UTF8 >"$MESH_TEST_DIR/initdb.log" 2>&1 \
            || { cat "$MESH_TEST_DIR/initdb.log" >&2; return 1; }
    fi
    as_pg "$pg/bin/pg_ctl" -D "$data" -w -l "$data/server.log" -o \
        "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null || { cat "$data/server.log" >&2; return 1; }
    echo "$port" >"$MESH_TEST_DIR/pg.port"
    PGOPTIONS='-c client_min_messages=warning' "$pg/bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qAt \
        -c "DROP DATABASE IF EXISTS mesh_test" -c "CREATE DATABASE mesh_test" >/dev/null
    "$pg/bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d mesh_test -qAt -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
    export MESH_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/mesh_test"
    echo "PostgreSQL + pgvector on 127.0.0.1:$port"
}

postgres_stop() {
    local pg; pg="$(pg_root "$MESH_TEST_DIR/venv")"
    local data; data="$(pg_data)"
    if [ -n "$pg" ] && [ -f "$data/postmaster.pid" ]; then
        as_pg "$pg/bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

# The data directory, beside the server binaries in the virtualenv.
pg_data() {
    echo "$MESH_TEST_DIR/pgdata"
}

sqs_start() {
    local port; port="$(free_port)"
    (exec "$MESH_TEST_DIR/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$MESH_TEST_DIR/moto.log" 2>&1) &
    echo $! >"$MESH_TEST_DIR/moto.pid"
    wait_for "moto_server" python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')"
    export MESH_TEST_SQS_ENDPOINT="http://127.0.0.1:$port"
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
    echo "SQS (moto) on 127.0.0.1:$port"
}

sqs_stop() {
    if [ -f "$MESH_TEST_DIR/moto.pid" ]; then
        kill "$(cat "$MESH_TEST_DIR/moto.pid")" 2>/dev/null || true
        rm -f "$MESH_TEST_DIR/moto.pid"
    fi
}

# As root, PostgreSQL runs as an unprivileged user that must reach both its data
# directory and the server binaries in the virtualenv. A checkout under a private
# directory (as /root is) is out of its reach: then everything goes under /var/tmp.
services_place() {
    mkdir -p "$MESH_TEST_DIR"
    [ "$(id -u)" = 0 ] || return 0
    id -u "$MESH_PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$MESH_PG_USER"
    if ! runuser -u "$MESH_PG_USER" -- test -x "$MESH_TEST_DIR" 2>/dev/null; then
        MESH_TEST_DIR="/var/tmp/mesh-test-$(printf %s "$MESH_TEST_DIR" | cksum | cut -d' ' -f1)"
        export MESH_TEST_DIR
        mkdir -p "$MESH_TEST_DIR"
        echo "the checkout is out of reach of $MESH_PG_USER; test services live in $MESH_TEST_DIR"
    fi
}

redis_start() {
    local port; port="$(free_port)"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
        --pidfile "$MESH_TEST_DIR/redis.pid" --logfile "$MESH_TEST_DIR/redis.log" --dir "$MESH_TEST_DIR" >/dev/null
    wait_for "redis-server" redis-cli -p "$port" ping
    export MESH_TEST_REDIS_URL="redis://127.0.0.1:$port"
    echo "Redis on 127.0.0.1:$port"
}

redis_stop() {
    if [ -f "$MESH_TEST_DIR/redis.pid" ]; then
        kill "$(cat "$MESH_TEST_DIR/redis.pid")" 2>/dev/null || true
        rm -f "$MESH_TEST_DIR/redis.pid"
    fi
}

services_start() {
    services_place
    chmod 755 "$MESH_TEST_DIR"
    services_stop
    services_install
    test_tools_install
    postgres_start
    sqs_start
    redis_start
    export MESH_TEST_SERVICES=1
}

services_stop() {
    postgres_stop
    sqs_stop
    redis_stop
}
