#!/usr/bin/env bash
# The detection score: run every seeded regression (detect/regressions/*.seed) against the
# bundled scenarios and print caught/total. ocs-harness knows nothing of the corpus: each
# regression reaches the agents only through what any user has.
#
# Two mechanisms apply a seed (its `file:` or `fixture:` line, see seed.py):
#   image    an image set whose simonsobs/ocs:latest is a derived image with the ocs package
#            patched by seed.py; every stock agent (FakeData, the registry) runs it and every
#            agent built FROM it (barebones, widget) is rebuilt on it
#   fixture  a copy of scenarios/, fixtures/ and images/ with one fixture agent's file
#            patched; the copied scenarios (and their snapshots) run on the default images
# A scenario with an image set of its own (`images:`, e.g. site-compose.yaml's so3g) is left
# out of the image mechanism's runs and of the baseline's: --images replaces its set, and it
# would fail on the derived image whatever the seed.
# The scenario a seed names ("Caught by: X") runs first; only if it passes does the rest of
# the suite run. A seed is caught when the run fails (exit 1); an error (exit 2, 3) is
# reported as an ERROR, never counted as caught.
#
# Controls: each mechanism has a seed certain to be caught (marked `control` in its first
# line), and the baseline, both mechanisms applied with no change at all (a derived image
# without a patch, an unpatched copy of the tree), must pass the whole suite, operation
# coverage included (--coverage all); it runs first when no seed is named.
#
# History seeds: a seed with a `# Source: ocs <commit> <subject>` line reverts a fix that
# simonsobs/ocs really shipped (files history-*.seed); the summary reports them apart from the
# hand-written ones, and --history runs only them. `Caught by:` may name a scenario under
# scenarios/ (e.g. `registry`) or under scenarios/upstream/ (e.g. `upstream/aggregator`).
#
# Usage: detect/score.sh [--no-baseline] [--history] [SEED...]
# Each run's output is kept in target/detect/<name>.log ($DETECT_OUT). Exit 0 when the
# baseline passed and every seed was caught.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${OCS_HARNESS_BIN:-target/debug/ocs-harness}
out=${DETECT_OUT:-target/detect}
baseline=1
history_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --no-baseline) baseline=0; shift ;;
    --history) history_only=1; shift ;;
    *) break ;;
  esac
done
seeds=("$@")
if [ ${#seeds[@]} -eq 0 ]; then
  if [ $history_only = 1 ]; then
    mapfile -t seeds < <(grep -l '^# *Source: ' detect/regressions/*.seed)
  else
    seeds=(detect/regressions/*.seed)
  fi
else
  baseline=0
fi
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# An image set whose simonsobs/ocs:latest is built from $1/Dockerfile (with seed $2, if any).
image_set() {
  local name=$1 seed=${2:-} ctx="$work/$1-image"
  mkdir -p "$ctx"
  if [ -n "$seed" ]; then
    cp detect/seed.py "$ctx/seed.py"
    cp "$seed" "$ctx/spec.seed"
    printf 'FROM simonsobs/ocs:latest\nCOPY seed.py spec.seed /tmp/\nRUN python3 /tmp/seed.py /tmp/spec.seed\n' >"$ctx/Dockerfile"
  else
    printf 'FROM simonsobs/ocs:latest\nLABEL ocs-harness-detect=baseline\n' >"$ctx/Dockerfile"
  fi
  printf 'name: detect-%s\noverrides:\n  simonsobs/ocs:latest: {build: %s}\n' "$name" "$ctx" >"$work/$name.yaml"
  echo "$work/$name.yaml"
}

# A copy of scenarios/, fixtures/ and images/ (with seed $2 applied to a fixture, if any).
tree() {
  local root="$work/$1-tree"
  mkdir -p "$root"
  cp -a scenarios fixtures images "$root/"
  rm -f "$root"/scenarios/snapshots/*.snap.new
  if [ -n "${2:-}" ]; then python3 detect/seed.py "$2" "$root/fixtures" >/dev/null; fi
  echo "$root"
}

# The first failing scenario in a -q log, and its first line of detail.
why() {
  { grep -m1 -A1 -E '^ *(FAIL|ERROR) ' "$1" || head -1 "$1"; } | sed -e 's/^ *//' | paste -sd ' ' | cut -c1-160
}

# The suite a seeded image set runs: the scenarios under $1/scenarios/ that do not name an
# image set of their own (`images:`). --images wins over a scenario's own set, and such a
# scenario needs what its set adds (site-compose.yaml: so3g in the ocs image), so on the
# derived image it would fail whatever the seed.
image_suite() {
  grep -L '^images:' "$1"/scenarios/*.yaml
}

status=0
if [ $baseline = 1 ]; then
  set_file=$(image_set baseline)
  root=$(tree baseline)
  rc=0
  start=$SECONDS
  # Not -q: the log keeps the suite's coverage table.
  mapfile -t suite < <(image_suite "$root")
  "$bin" test --ci --coverage all --images "$set_file" "${suite[@]}" >"$out/baseline.log" 2>&1 || rc=$?
  if [ $rc = 0 ]; then
    echo "baseline (both mechanisms, no change): passed, $((SECONDS - start)) s"
  else
    echo "baseline (both mechanisms, no change): FAILED rc=$rc: $(why "$out/baseline.log")"
    status=1
  fi
fi

caught=0 total=0 hcaught=0 htotal=0
for seed in "${seeds[@]}"; do
  name=$(basename "$seed" .seed)
  kind=$(sed -n -E 's/^(file|fixture):.*/\1/p' "$seed" | head -1)
  first=$(sed -n 's/.*Caught by: *\([a-z0-9/-]*[a-z0-9]\).*/\1/p' "$seed" | head -1)
  history=0
  grep -q '^# *Source: ' "$seed" && history=1
  images=()
  case $kind in
    file) mechanism=image; images=(--images "$(image_set "$name" "$seed")"); root=.
      mapfile -t suite < <(image_suite "$root") ;;
    fixture) mechanism=fixture; root=$(tree "$name" "$seed"); suite=("$root/scenarios/") ;;
    *) echo "$name: ERROR: no file: or fixture: line"; status=1; continue ;;
  esac
  total=$((total + 1))
  htotal=$((htotal + history))
  verdict=missed
  start=$SECONDS
  for target in ${first:+$root/scenarios/$first.yaml} all; do
    rc=0
    if [ "$target" = all ]; then targets=("${suite[@]}"); else targets=("$target"); fi
    "$bin" -q test --ci "${images[@]}" "${targets[@]}" >"$out/$name.log" 2>&1 || rc=$?
    case $rc in
      0) ;;
      1) verdict="caught: $(why "$out/$name.log")"; break ;;
      *) verdict="ERROR rc=$rc: $(why "$out/$name.log")"; break ;;
    esac
  done
  if [[ $verdict == caught* ]]; then
    caught=$((caught + 1))
    hcaught=$((hcaught + history))
  fi
  tag=
  [ $history = 1 ] && tag=", history"
  echo "$name [$mechanism$tag, $((SECONDS - start)) s]: $verdict"
done
echo "score: $caught/$total caught"
echo "hand-written seeds: $((caught - hcaught))/$((total - htotal)) caught"
echo "history seeds (reverted ocs fixes): $hcaught/$htotal caught"
[ "$caught" = "$total" ] || status=1
exit $status
