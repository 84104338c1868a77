#!/usr/bin/env bash
# The bundled scenarios three ways, wall time each (issue 12's measurement):
#   1. ocs-harness test scenarios/          (parallel, -j from the cores, snapshots checked)
#   2. cargo test --test scenarios          (libtest's threads, snapshots checked)
#   3. ocs-harness test FILE, one at a time (sequential, snapshots checked)
# Images must be built already (run the README's main job once); every way runs under CI=true so
# nothing is written. Usage: bench/suite-wall.sh [JOBS]   (JOBS for way 1; default: the cores)
set -euo pipefail
cd "$(dirname "$0")/.."
export CI=true
cargo build -q --locked -p ocs-harness --bin ocs-harness
cargo test -q --locked --no-run --test scenarios 2>/dev/null
bin=target/debug/ocs-harness
jobs=${1:-$(nproc)}
now() { date +%s.%N; }
t0=$(now); "$bin" -q test -j "$jobs" scenarios/ >/dev/null; t1=$(now)
cargo test -q --locked --test scenarios >/dev/null 2>&1; t2=$(now)
for f in scenarios/*.yaml; do "$bin" -q test "$f" >/dev/null; done; t3=$(now)
n=$(ls scenarios/*.yaml | wc -l)
printf '| way (%s scenarios, %s cores) | wall (s) |\n| --- | --- |\n' "$n" "$(nproc)"
printf '| `ocs-harness test -j %s scenarios/` | %.1f |\n' "$jobs" "$(awk "BEGIN{print $t1 - $t0}")"
printf '| `cargo test --test scenarios` | %.1f |\n' "$(awk "BEGIN{print $t2 - $t1}")"
printf '| `ocs-harness test FILE`, one by one | %.1f |\n' "$(awk "BEGIN{print $t3 - $t2}")"
