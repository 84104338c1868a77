#!/usr/bin/env bash
# A rehearsal of the reusable workflow a Python plugin calls (.github/workflows/plugin.yml,
# job `scenarios`) on this machine: its `run:` scripts executed as written (bash -e as GitHub
# runs them, HOME a temporary directory, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files), in a
# throwaway plugin (a copy of .ci/plugin-fixture), with what is GitHub's stood in for:
#   - the release's wheels: built here with maturin's `bin` bindings (the build release.yml
#     makes, in the dev profile to reuse this checkout's compiled dependencies), served by a
#     stand-in `gh release download` that copies them;
#   - actions/cache: the save and restore of ~/.ocs-harness/baseline are the same directory
#     kept between the "runs"; the `if:` conditions are GitHub's, and each "run" below runs the
#     steps GitHub would run for its event.
# Then three runs, as a plugin's CI sees them:
#   1. a pull request before the default branch ever passed: no baseline, says so, passes;
#   2. a push to the default branch: passes and keeps its times;
#   3. a pull request whose task became 3× slower (DELAY 2 s -> 6 s): fails on the time
#      budget, with the growth report in the job summary.
# The harness the runs use is the wheel installed by the workflow's install step into a fresh
# virtual environment (the wheel is tested as users get it). Needs the bundled images on the
# engine (built by an earlier run; they are not built here). Prints each step's time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
wf=.github/workflows/plugin.yml
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo} RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home" "$work/release" "$work/shim"

elapsed() { echo "$(date +%s.%N) - $1" | bc; }

# maturin (pinned) in a virtual environment under target/, reused when present.
venv=target/maturin-venv
if [ ! -x "$venv/bin/maturin" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'maturin==1.16.0'
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' harness/Cargo.toml | head -n 1)
t0=$(date +%s.%N)
"$venv/bin/maturin" build --quiet --profile dev -m harness/Cargo.toml -o "$work/release" >/dev/null
wheel=$(ls "$work/release"/ocs_harness-"$version"-*.whl)
printf '%-62s %6.1f s\n' "wheel built ($(basename "$wheel"))" "$(elapsed "$t0")"
python3 - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
scripts = [n for n in names if n.endswith(".data/scripts/ocs-harness")]
if not scripts:
    sys.exit(f"error: {sys.argv[1]} carries no ocs-harness script: {names}")
print("the wheel holds", ", ".join(names))
PY

# `gh release download TAG --repo R --pattern P --dir D`: copies the release's files that
# match P into D (fails, as gh does, when none match).
cat >"$work/shim/gh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
[ "\$1 \$2" = "release download" ] || { echo "gh stand-in: only release download" >&2; exit 2; }
pattern= dir=.
shift 3
while [ \$# -gt 0 ]; do
    case "\$1" in
        --pattern) pattern=\$2; shift 2 ;;
        --dir) dir=\$2; shift 2 ;;
        *) shift 2 ;;
    esac
done
found=0
for f in "$work/release"/\$pattern; do
    [ -f "\$f" ] && cp "\$f" "\$dir/" && found=1
done
[ "\$found" = 1 ] || { echo "release asset not found" >&2; exit 1; }
EOF
chmod +x "$work/shim/gh"

# The run: script of the step with this name in the job `scenarios`.
step() {
    python3 - "$wf" "$1" <<'PY'
import sys, yaml
wf = yaml.safe_load(open(sys.argv[1]))
for s in wf["jobs"]["scenarios"]["steps"]:
    if s.get("name") == sys.argv[2]:
        print(s["run"])
        sys.exit(0)
sys.exit(f"no step named {sys.argv[2]!r} in {sys.argv[1]}'s job scenarios")
PY
}
# run_step NAME [VAR=value ...]: the step's script in the plugin's checkout, with the job's
# files and the step's `env:` given as arguments; its exit code is returned.
run_step() {
    local name=$1 script t0 rc=0
    shift
    script=$(step "$name")
    t0=$(date +%s.%N)
    (cd "$plugin" && env "$@" HOME="$work/home" PATH="$work/shim:$PATH" GITHUB_OUTPUT="$out" \
        GITHUB_STEP_SUMMARY="$summary" GITHUB_ACTIONS=true bash --noprofile --norc -eo pipefail -c "$script") || rc=$?
    printf '%-62s %6.1f s (exit %s)\n' "$name" "$(elapsed "$t0")" "$rc"
    return "$rc"
}
# A fresh checkout of the plugin and fresh job files for one "run".
checkout() {
    plugin=$work/plugin-$1
    cp -r .ci/plugin-fixture "$plugin"
    out=$work/output-$1 summary=$work/summary-$1.md
    : >"$out"
    : >"$summary"
    echo "== run $1: $2"
}
run_env=(SCENARIOS=scenarios/ AS_ROOT=false OCS_HARNESS_IMAGES=local TIME_BUDGETS=true
         BUDGET_RATIO=2 CI=true)

checkout 1 "pull request, no green run of the default branch yet"
run_step "Install the harness (pip install of the release's wheel, else build it once)" \
    GH_TOKEN=none VERSION="v$version" REPOSITORY=simonsobs/ocs-harness
"$work/home/.ocs-harness/venv/bin/pip" show -f ocs-harness | grep -E '^(Name|Version)|bin/ocs-harness'
run_step "Run the scenarios" "${run_env[@]}" EVENT=pull_request
grep -q "No baseline yet" "$summary" \
    || { echo "error: the summary does not say there was no baseline:" >&2; cat "$summary" >&2; exit 1; }
echo "ok: no baseline, said so in the summary, passed"

checkout 2 "push to the default branch"
run_step "Run the scenarios" "${run_env[@]}" EVENT=push
run_step "Keep this run's times (a green run of the default branch)"
grep -q '^kept=1$' "$out" || { echo "error: the default branch's times were not kept" >&2; exit 1; }
cat "$work/home/.ocs-harness/baseline"/*/times.json | python3 -c \
    'import json,sys; t=json.load(sys.stdin); print("kept:", [(s["action"], round(s["duration"], 2)) for s in t["steps"]])'

checkout 3 "pull request whose task became 3x slower (DELAY=6.0)"
rc=0
run_step "Run the scenarios" "${run_env[@]}" EVENT=pull_request DELAY=6.0 || rc=$?
echo "--- job summary"
cat "$summary"
echo "---"
[ "$rc" -eq 1 ] || { echo "error: the slower pull request exited $rc, not 1 (failed)" >&2; exit 1; }
grep -q '^| ❌ | slow-task | step 2 (wait fake.delay_task' "$summary" \
    || { echo "error: the growth report does not mark the slower step" >&2; exit 1; }
grep -q 'time budgets' "$summary" \
    || { echo "error: the summary does not show the time budgets failure" >&2; exit 1; }
echo "ok: the wheel installed into a fresh virtual environment ran the plugin's scenario; the" \
     "3x slower task failed the pull request on its time budget"
