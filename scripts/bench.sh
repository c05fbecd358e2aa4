#!/usr/bin/env bash
# Runs one criterion benchmark of the benches package with the test services up
# (PostgreSQL + pgvector, SQS), then stops them:  scripts/bench.sh store [criterion args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
trap services_stop EXIT
services_start
bench=$1; shift
cargo bench -p mesh-benches --bench "$bench" -- "$@"
