#!/usr/bin/env bash
# Run every seeded regression (detect/regressions/*.seed) against the bundled scenarios and
# print caught/total. Each regression is applied only through an image set: a derived
# simonsobs/ocs:latest with the ocs package patched (seed.py), which every agent built FROM
# it and every stock agent then runs. The scenario a seed names ("Caught by: X") runs
# first; only if it passes does the rest of the suite run. Control: the unchanged baseline
# (an empty image set) must pass. Usage: detect/score.sh [SEED...]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${OCS_HARNESS_BIN:-target/debug/ocs-harness}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(detect/regressions/*.seed)
caught=0 total=0
for seed in "${seeds[@]}"; do
  name=$(basename "$seed" .seed)
  ctx="$work/$name"
  mkdir -p "$ctx"
  cp detect/seed.py "$ctx/seed.py"
  cp "$seed" "$ctx/spec.seed"
  printf 'FROM simonsobs/ocs:latest\nCOPY seed.py spec.seed /tmp/\nRUN python3 /tmp/seed.py /tmp/spec.seed\n' >"$ctx/Dockerfile"
  printf 'name: seeded-%s\noverrides:\n  simonsobs/ocs:latest: {build: %s}\n' "$name" "$ctx" >"$work/$name.yaml"
  first=$(sed -n 's/.*Caught by: *\([a-z0-9-]*\).*/\1/p' "$seed" | head -1)
  total=$((total + 1))
  verdict=missed
  for target in ${first:+scenarios/$first.yaml} scenarios/; do
    rc=0
    "$bin" -q test --ci --images "$work/$name.yaml" "$target" >"$work/$name.log" 2>&1 || rc=$?
    case $rc in
      0) ;;
      1) verdict="caught ($target)"; break ;;
      *) verdict="ERROR rc=$rc (see below)"; tail -20 "$work/$name.log"; break ;;
    esac
  done
  [[ $verdict == caught* ]] && caught=$((caught + 1))
  echo "$name: $verdict"
done
echo "score: $caught/$total caught"
