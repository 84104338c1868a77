#!/usr/bin/env bash
# The bundled scenarios three ways, wall time each (issue 12's measurement), now
# `ocs-harness bench --what suite`: `ocs-harness test scenarios/` (parallel), `cargo test --test
# scenarios`, and `ocs-harness test FILE` one at a time, all with snapshots checked under CI=true.
# Images must be built already (run the README's main job once). Extra arguments go to the
# bench (e.g. --scenario DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --locked -p ocs-harness --bin ocs-harness
exec target/debug/ocs-harness bench --what suite "$@"
