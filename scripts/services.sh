# Real services for the tests, started on loopback under .mesh-test/ (git-ignored).
# Sourced by scripts/test.sh. Each service the tests need adds a start and a stop step
# here and exports its address (MESH_TEST_*) so the tests find it; a test that needs a
# service fails, not skips, when the variable is set but the service is gone.
#
# Today no test needs an external service; this file is where PostgreSQL + pgvector
# (PyPI `pgserver`) and an SQS endpoint (PyPI `moto[server]`) are provisioned when the
# storage crate lands.

MESH_TEST_DIR="${MESH_TEST_DIR:-$PWD/.mesh-test}"
export MESH_TEST_DIR

services_start() {
    mkdir -p "$MESH_TEST_DIR"
    echo "no external services needed yet"
}

services_stop() {
    :
}
