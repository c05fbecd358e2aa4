#!/usr/bin/env bash
# The one test command: provisions the real services the tests need (on loopback,
# under the git-ignored .mesh-test/), then runs the format check, clippy with warnings
# denied, every test and doctest of the workspace and the docs build, and stops what it
# started. Safe to run again; works as root and as a normal user.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
step() { printf '\n==> %s\n' "$*"; }

# shellcheck source=scripts/services.sh
source scripts/services.sh
trap services_stop EXIT
step "disk"
# A full test build needs about 6 GB under target/; say so up front when it is short.
df -h . | tail -n 1 | awk '{ print $4 " free on " $6 }'
step "services"
services_start

step "cargo fmt --check"
cargo fmt --all -- --check

step "mesh-core's module graph: no import cycles, layers kept, files short"
python3 scripts/check-layers.py

step "every error code the mesh sends is in docs/protocol.md"
python3 scripts/check-protocol-codes.py

step "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

step "doctests"
cargo test --workspace --doc --all-features --locked

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --all-features --locked --no-fail-fast
else
    cargo test --workspace --all-features --locked --lib --bins --tests --examples
fi

step "every publishable crate packages and builds from its package"
# Packages each crate as crates.io would receive it (path dependencies resolved among
# the packages) and builds it from the package: a file the crate needs but does not
# ship fails here.
# Cargo treats what it builds from a registry as never changing: a checkout that ran
# this before would verify against its earlier packages — kept in the target
# directory's package/tmp-registry, unpacked under $CARGO_HOME/registry/src/<hash of
# that path>/, compiled into the target directory. So the packages get a target
# directory of their own, emptied first, and their unpacked copies are dropped.
package_target=target/packaged
rm -rf "$package_target"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json,sys; [print(p["name"] + "-" + p["version"]) for p in json.load(sys.stdin)["packages"]]' |
    while read -r unpacked; do rm -rf "$cargo_home"/registry/src/*/"$unpacked"; done
# The packages build without debug info (the workspace's profile does not reach them)
# and their target directory goes once they pass: it is a second full build.
CARGO_PROFILE_DEV_DEBUG=none cargo package --workspace --exclude mesh-examples \
    --exclude mesh-benches --locked --target-dir "$package_target"
rm -rf "$package_target"

step "the embedding example runs"
mkdir -p target
cargo run --quiet --locked --all-features -p mesh-agents-core --example embedded | tee target/embedded.out
grep -q "completed" target/embedded.out

step "the OpenAPI document validates"
mkdir -p target
cargo run --quiet --locked -p mesh-examples --bin mesh -- openapi >target/openapi.json
"$MESH_TEST_DIR/venv/bin/openapi-spec-validator" target/openapi.json
