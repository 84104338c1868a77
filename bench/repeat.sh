#!/usr/bin/env bash
# Run the same scenarios N times in a row, to count flaky failures (issue 15's "10 consecutive
# times for the crossbar-restart ones", issue 17's "0 false failures over 10 repeated runs").
#
#   bench/repeat.sh N [TEST FLAGS] PATH...   e.g. bench/repeat.sh 20 scenarios/ scenarios/upstream/
#
# This is the documented way to look for false failures (a scenario that fails now and then on
# an unchanged tree): every non-pass is tabulated with its cause (the error's first line), and a
# cause found this way is fixed where it arises, never retried. Flags before the paths go to
# `ocs-harness test` as they are (e.g. `-j 2`). REPEAT_OUT names the output directory (default
# target/ocs-harness/repeat), so that two loops can run side by side.
#
# Each round is one `ocs-harness test --ci --format json PATH...` (the files in parallel, as a
# user runs them); its exit code, wall time and each scenario's result go to a table printed at
# the end and written to target/ocs-harness/repeat/summary.md; each round's output is kept in
# target/ocs-harness/repeat/round-K.{out,log}. Exit 0 only if every round passed. Images are
# built in the first round if missing (that round's time includes them).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 N [TEST FLAGS] PATH..." >&2
    exit 2
fi
n=$1
shift
bin=${OCS_HARNESS_BIN:-target/debug/ocs-harness}
[ -n "${OCS_HARNESS_BIN:-}" ] || cargo build -q --locked -p ocs-harness --bin ocs-harness
out=${REPEAT_OUT:-target/ocs-harness/repeat}
rm -rf "$out"
mkdir -p "$out"
summary=$out/summary.md
{
    echo "# bench/repeat.sh $n $*"
    echo
    echo "| round | exit | wall (s) | failed scenarios | load average at start |"
    echo "| --- | --- | --- | --- | --- |"
} >"$summary"
passed=0
for k in $(seq 1 "$n"); do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    start=$(date +%s.%N)
    rc=0
    "$bin" test --ci --format json "$@" >"$out/round-$k.out" 2>"$out/round-$k.log" || rc=$?
    wall=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
    failed=$(python3 - "$out/round-$k.out" <<'PY'
import json, sys
bad = []
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "scenario_finished" and e.get("status") != "passed":
        cause = (e.get("message") or "").strip().splitlines()
        cause = cause[0][:200] if cause else "no message"
        cause = cause.replace("|", "\\|")
        bad.append(f"{e.get('scenario')} ({e.get('status')}, {e.get('kind')}: {cause})")
print(", ".join(bad) or "-")
PY
)
    [ "$rc" -eq 0 ] && passed=$((passed + 1))
    echo "| $k | $rc | $wall | $failed | $load |" | tee -a "$summary"
done
echo | tee -a "$summary"
echo "$passed of $n rounds passed" | tee -a "$summary"
[ "$passed" -eq "$n" ]
