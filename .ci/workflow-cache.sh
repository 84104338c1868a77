#!/usr/bin/env bash
# A rehearsal of the reusable workflow's image cache on this machine: the `run:` scripts of
# .github/workflows/ocs-harness.yml's cache steps, executed as written (GITHUB_OUTPUT a file,
# HOME a temporary directory; the actions/cache upload and download are GitHub's and are not
# rehearsed), across two engines the way a fresh runner sees it:
#   1. "Which recipe-built images to cache" on the usual engine (which has the images built);
#   2. "Export the recipe-built images for the cache": docker save of those images;
#   3. an empty engine (bench/empty-engine.sh) stands for the fresh runner: "Load the
#      recipe-built images", then the barebones scenario must pass there building no base image.
# Needs root (the empty engine) and the recipe images on the usual engine. Prints each step's
# time; exit 0 when the fresh engine built no base image.
set -euo pipefail
cd "$(dirname "$0")/.."
wf=.github/workflows/ocs-harness.yml
bin=target/debug/ocs-harness
cargo build -q --locked -p ocs-harness --bin ocs-harness
# The steps run with HOME at a temporary directory (the cache's path is under ~); cargo and
# rustup keep theirs.
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo} RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
home=$(mktemp -d)
out=$(mktemp)
trap 'rm -rf "$home" "$out"; bench/empty-engine.sh stop >/dev/null 2>&1 || true' EXIT

# The run: script of the step with this name in the first job that has it.
step() {
    python3 - "$wf" "$1" <<'PY'
import sys, yaml
wf = yaml.safe_load(open(sys.argv[1]))
for job in wf["jobs"].values():
    for s in job.get("steps", []):
        if s.get("name") == sys.argv[2]:
            print(s["run"])
            sys.exit(0)
sys.exit(f"no step named {sys.argv[2]!r} in {sys.argv[1]}")
PY
}
run_step() {
    local name=$1 script t0
    script=$(step "$name")
    t0=$(date +%s.%N)
    HOME=$home GITHUB_OUTPUT=$out bash -euo pipefail -c "$script"
    printf '%-58s %6.1f s\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)"
}

run_step "Which recipe-built images to cache (none when the set's images are pulled)"
key=$(sed -n 's/^key=//p' "$out")
images=$(sed -n 's/^images=//p' "$out")
[ -n "$key" ] || { echo "error: the step wrote no key= to GITHUB_OUTPUT" >&2; exit 1; }
echo "key=$key images=$images"
IMAGES=$images run_step "Export the recipe-built images for the cache"
grep -q '^saved=true' "$out" || { echo "error: the export step saved nothing" >&2; exit 1; }
ls -l "$home/.ocs-harness/image-cache/images.tar"

eval "export $(bench/empty-engine.sh start)"
run_step "Load the recipe-built images"
log=$(mktemp)
t0=$(date +%s.%N)
rc=0
"$bin" test --ci --images local scenarios/barebones.yaml >"$log" 2>&1 || rc=$?
printf '%-58s %6.1f s (exit %s)\n' "barebones on the fresh engine" "$(echo "$(date +%s.%N) - $t0" | bc)" "$rc"
if grep -E 'building ocs-harness/(os|ocs|crossbar):' "$log"; then
    echo "error: the fresh engine rebuilt a base image despite the loaded cache" >&2
    exit 1
fi
grep -E 'images \(|building|built' "$log" || true
rm -f "$log"
[ "$rc" -eq 0 ]
echo "ok: the cached images loaded and the scenario passed without building a base image"
