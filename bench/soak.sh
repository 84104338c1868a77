#!/usr/bin/env bash
# The kill soak (issue 28): N runs of fast bundled scenarios, each killed with SIGKILL at a
# random moment of its life (launch, steps, teardown: the moment is drawn uniformly over the
# length of an unkilled run), then `ocs-harness clean`. After each kill the engine is grepped
# for containers, networks and volumes the run left WITHOUT the harness's label (what no sweep
# could ever find), and after each `clean` for anything at all that was not there before the
# soak. A table says where each kill landed (the phase, from the run's JSON events) and what was
# left; exit 1 on any leftover.
#
#   bench/soak.sh [N] [SCENARIO...]     default: 50 scenarios/barebones.yaml
#
# Images are built (and the unkilled run's length measured) by one plain run first. SOAK_OUT
# names the output directory (default target/ocs-harness/soak); a seed in SOAK_SEED repeats a
# soak's draws. Run it on a quiet engine: a container or network that someone else creates
# meanwhile counts as a leak.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
[ $# -gt 0 ] && shift
if ! [[ $n =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [N] [SCENARIO...]" >&2
    exit 2
fi
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(scenarios/barebones.yaml)
bin=${OCS_HARNESS_BIN:-target/debug/ocs-harness}
[ -n "${OCS_HARNESS_BIN:-}" ] || cargo build -q --locked -p ocs-harness --bin ocs-harness
out=${SOAK_OUT:-target/ocs-harness/soak}
rm -rf "$out"
mkdir -p "$out"
RANDOM=${SOAK_SEED:-$$}

engine_objects() {
    docker ps -aq --no-trunc | sed 's/^/container /'
    docker network ls -q --no-trunc | sed 's/^/network /'
    docker volume ls -q | sed 's/^/volume /'
}
# Of the objects in $1 (lines "kind id"), those without the org.ocs-harness.managed label.
unlabelled() {
    while read -r kind id; do
        [ -n "$id" ] || continue
        case $kind in
        container) format='{{index .Config.Labels "org.ocs-harness.managed"}}' ;;
        *) format='{{index .Labels "org.ocs-harness.managed"}}' ;;
        esac
        label=$(docker "$kind" inspect -f "$format" "$id" 2>/dev/null || echo gone)
        [ "$label" = gone ] && continue  # removed meanwhile (by the engine: --rm, auto-remove)
        [ "$label" = "true" ] || echo "$kind $id"
    done <"$1"
}
# The phase a run was in when it was killed, from its JSON events so far.
phase_of() {
    python3 - "$1" <<'PY'
import json, sys
phase, steps, done = "startup", None, 0
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue  # the line the kill cut short
    kind = e.get("event")
    if kind == "scenario_started":
        phase, steps = "images and launch", e.get("steps")
    elif kind == "stack_ready":
        phase = "steps"
    elif kind == "step_finished":
        done = max(done, e.get("step") or 0)
        if steps is not None and done >= steps:
            phase = "teardown"
    elif kind == "scenario_finished":
        phase = "after the run"
print(phase)
PY
}

engine_objects | sort >"$out/before.txt"
echo "one unkilled run of ${scenarios[*]} (builds images, measures the length to draw from)"
start=$(date +%s%N)
"$bin" test -q "${scenarios[@]}" >"$out/plain.out" 2>&1 || {
    echo "the unkilled run failed; see $out/plain.out" >&2
    exit 1
}
length_ms=$((($(date +%s%N) - start) / 1000000))
echo "it took ${length_ms} ms; kills are drawn from 0 to ${length_ms} ms"
engine_objects | sort >"$out/before.txt"

summary=$out/summary.md
{
    echo "# bench/soak.sh $n ${scenarios[*]}"
    echo
    echo "| run | killed after (ms) | phase | unlabelled after the kill | left after clean |"
    echo "| --- | --- | --- | --- | --- |"
} >"$summary"
leaks=0
for k in $(seq 1 "$n"); do
    delay=$(((RANDOM * 32768 + RANDOM) % length_ms))
    "$bin" test --format json "${scenarios[@]}" >"$out/run-$k.out" 2>"$out/run-$k.log" &
    pid=$!
    # Not a sleep standing in for a condition: the random moment IS the experiment.
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    phase=$(phase_of "$out/run-$k.out")
    engine_objects | sort >"$out/after-kill-$k.txt"
    comm -13 "$out/before.txt" "$out/after-kill-$k.txt" >"$out/new-$k.txt"
    unlabelled "$out/new-$k.txt" >"$out/unlabelled-$k.txt"
    "$bin" clean >"$out/clean-$k.log" 2>&1 || echo "clean failed (run $k): see $out/clean-$k.log" >&2
    engine_objects | sort >"$out/after-clean-$k.txt"
    comm -13 "$out/before.txt" "$out/after-clean-$k.txt" >"$out/left-$k.txt"
    nu=$(wc -l <"$out/unlabelled-$k.txt")
    nl=$(wc -l <"$out/left-$k.txt")
    [ "$nu" -eq 0 ] && [ "$nl" -eq 0 ] || leaks=$((leaks + 1))
    echo "| $k | $delay | $phase | $nu | $nl |" >>"$summary"
    printf 'run %2d: killed after %5d ms (%s): %d unlabelled, %d left after clean\n' "$k" "$delay" "$phase" "$nu" "$nl"
    # A leftover is counted once; start the next run from what is there now.
    cp "$out/after-clean-$k.txt" "$out/before.txt"
done
{
    echo
    echo "phases hit:"
    sed -n 's/^| [0-9]* | [0-9]* | \([^|]*\) |.*/\1/p' "$summary" | sort | uniq -c | sed 's/^/    /'
    echo
    echo "$((n - leaks)) of $n killed runs left nothing behind after clean (and nothing unlabelled after the kill)"
} | tee -a "$summary"
[ "$leaks" -eq 0 ]
