#!/usr/bin/env bash
# Property-based HTTP fuzzing of the REST API from its own OpenAPI document with
# schemathesis (PyPI), against `mesh up` on loopback: every operation gets generated
# valid and invalid requests, and the run fails on any 5xx or on a response that does
# not match the document. Also validates the document (openapi-spec-validator).
#
#   scripts/fuzz-api.sh [max examples per operation, default 100]
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-100}"
venv=.mesh-test/fuzz-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5' openapi-spec-validator
fi
cargo build --release --locked -p mesh-examples --bin mesh
mkdir -p target/fuzz
./target/release/mesh openapi >target/fuzz/openapi.json
"$venv/bin/openapi-spec-validator" target/fuzz/openapi.json

key="fuzz-admin-key-$(date +%s)-0123456789"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
RUST_LOG=error MESH_API_KEY="$key" ./target/release/mesh up --listen "127.0.0.1:$port" --in-memory --demo --demo-every-ms 1000 >target/fuzz/mesh.log 2>&1 &
mesh_pid=$!
trap 'kill $mesh_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
# Collaboration jobs wait for agents up to wait_ms; they get fewer examples.
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/openapi.json" \
    --header "Authorization: Bearer $key" \
    --checks all --exclude-checks positive_data_acceptance,missing_required_header,ignored_auth,unsupported_method \
    --exclude-operation-id run_collab \
    --max-examples "$examples" --request-timeout 10 --workers 2 --no-color
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/openapi.json" \
    --header "Authorization: Bearer $key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --include-operation-id run_collab \
    --max-examples 10 --request-timeout 130 --workers 2 --no-color
