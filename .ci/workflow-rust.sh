#!/usr/bin/env bash
# A rehearsal of the reusable workflow for a Rust plugin (.github/workflows/ocs-harness.yml) on
# this machine, in a throwaway Rust plugin: a temporary directory with its own Cargo workspace
# that depends on the harness by path (as a git dependency would: the harness is not a member
# of the plugin's workspace), a `harness = false` scenario target and the scenario of
# .ci/plugin-fixture. The workflow's `run:` scripts are executed as written (bash -e as GitHub
# runs them, HOME a temporary directory, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files); what is
# GitHub's is stood in for:
#   - `sudo`: a stand-in that does what Ubuntu's sudo does to the environment (secure_path:
#     PATH=/usr/local/sbin:...:/bin, whatever --preserve-env says; only the variables it
#     names pass), so a step that would lose ~/.cargo/bin under sudo fails here too;
#   - actions/cache and the `if:` conditions (each "run" runs the steps GitHub would run);
#   - the toolchain step (`rustup toolchain install stable`) is not run: this machine's
#     toolchain is used (the step would update the shared toolchain).
# The plugin builds into this checkout's target directory (CARGO_TARGET_DIR, to reuse the
# compiled dependencies) with its runs kept under its own target/ (OCS_HARNESS_RUNS_DIR), where
# a runner's checkout has them. It first shows that the steps as they were (`cargo run -p
# ocs-harness`) fail in such a workspace, then runs the job `scenarios` on a push to the default
# branch (keeps its times) and on a pull request whose task became 3x slower (must fail on its
# time budget), the job `merge`'s JUnit merge, and the job `compare`'s comparison. Needs the
# bundled images on the engine. Prints each step's time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
wf=.github/workflows/ocs-harness.yml
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo} RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
plugin=$work/plugin
mkdir -p "$work/home" "$work/shim" "$plugin/src" "$plugin/tests"
elapsed() { echo "$(date +%s.%N) - $1" | bc; }

# The throwaway plugin: its own workspace, the harness a path dependency (not a member).
cat >"$plugin/Cargo.toml" <<EOF
[package]
name = "throwaway-ocs-plugin"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dev-dependencies]
ocs-harness = { path = "$root/harness" }

[[test]]
name = "scenarios"
harness = false

# As the harness's own workspace has them (the rehearsal reuses its compiled dependencies).
[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
debug = false
EOF
echo '//! A plugin crate with nothing of its own: its scenarios are its tests.' >"$plugin/src/lib.rs"
cat >"$plugin/tests/scenarios.rs" <<'EOF'
fn main() -> std::process::ExitCode {
    ocs_harness::testing::main("scenarios")
}
EOF
cp -r .ci/plugin-fixture/scenarios "$plugin/"
# Its Cargo.lock, as a plugin commits it: the harness's own versions, and the plugin added.
cp Cargo.lock "$plugin/"
(cd "$plugin" && cargo metadata -q --format-version 1 >/dev/null)

# `sudo [--preserve-env=A,B] CMD...`: CMD with only A, B and sudo's own variables, and PATH
# replaced by Ubuntu's secure_path (as on GitHub's runners).
cat >"$work/shim/sudo" <<'EOF'
#!/usr/bin/env bash
keep=()
if [[ "${1:-}" == --preserve-env=* ]]; then
    IFS=, read -r -a names <<<"${1#--preserve-env=}"
    for n in "${names[@]}"; do
        [ "$n" = PATH ] && continue
        [ -n "${!n+x}" ] && keep+=("$n=${!n}")
    done
    shift
fi
# (DOCKER_HOST too, when set: the engine this machine's tests use.)
[ -n "${DOCKER_HOST:-}" ] && keep+=("DOCKER_HOST=$DOCKER_HOST")
exec env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin \
    "${keep[@]}" "$@"
EOF
chmod +x "$work/shim/sudo"

# The run: script of the step named $2 in job $1 (of the workflow file $3, default $wf).
step() {
    python3 - "${3:-$wf}" "$1" "$2" <<'PY'
import sys, yaml
wf = yaml.safe_load(open(sys.argv[1]))
for s in wf["jobs"][sys.argv[2]]["steps"]:
    if s.get("name") == sys.argv[3]:
        print(s["run"])
        sys.exit(0)
sys.exit(f"no step named {sys.argv[3]!r} in {sys.argv[1]}'s job {sys.argv[2]}")
PY
}
# run_script LABEL SCRIPT [VAR=value ...]: a step's script in the plugin's checkout, with the
# job's files and the step's `env:`; its exit code is returned.
run_script() {
    local label=$1 script=$2 t0 rc=0
    shift 2
    t0=$(date +%s.%N)
    (cd "$plugin" && env "$@" HOME="$work/home" PATH="$work/shim:$PATH" \
        CARGO_TARGET_DIR="$root/target" OCS_HARNESS_RUNS_DIR="$plugin/target/ocs-harness/runs" \
        GITHUB_OUTPUT="$out" GITHUB_STEP_SUMMARY="$summary" GITHUB_ACTIONS=true \
        GITHUB_WORKSPACE="$plugin" bash --noprofile --norc -eo pipefail -c "$script") || rc=$?
    printf '%-70s %6.1f s (exit %s)\n' "$label" "$(elapsed "$t0")" "$rc"
    return "$rc"
}
run_step() {
    local job=$1 name=$2
    shift 2
    run_script "$job: $name" "$(step "$job" "$name")" "$@"
}
fresh_job() {
    out=$work/output-$1 summary=$work/summary-$1.md
    : >"$out"
    : >"$summary"
    rm -rf "$plugin/target/ocs-harness"
    echo "== $1: $2"
}

fresh_job before "the steps as they were (main's workflow): cargo run -p in a plugin's workspace"
old=$work/ocs-harness.yml.before
if git show main:"$wf" >"$old" 2>/dev/null && grep -q 'cargo run -q --locked -p ocs-harness' "$old"; then
    rc=0
    run_script "scenarios: images --cache-key by cargo run -p (before)" \
        "$(step scenarios "Which recipe-built images to cache (none when the set's images are pulled)" "$old")" \
        OCS_HARNESS_IMAGES=local 2>"$work/before.err" || rc=$?
    grep -m1 -i 'error' "$work/before.err" || true
    [ "$rc" -ne 0 ] || { echo "error: cargo run -p ocs-harness worked in the plugin's workspace" >&2; exit 1; }
    rc=0
    run_script "sudo cargo test (before)" \
        "sudo --preserve-env=PATH,HOME,CARGO_HOME,RUSTUP_HOME cargo test" 2>"$work/before.err" || rc=$?
    grep -m1 'cargo' "$work/before.err" || true
    [ "$rc" -ne 0 ] || { echo "error: sudo cargo test found cargo" >&2; exit 1; }
else
    echo "(main's workflow no longer has the cargo run -p steps: nothing to show)"
fi

fresh_job push "push to the default branch"
run_step scenarios "Install the harness binary (the version Cargo.lock pins)"
"$work/home/.ocs-harness/bin/ocs-harness" --version
run_step scenarios "Which recipe-built images to cache (none when the set's images are pulled)" \
    OCS_HARNESS_IMAGES=local
images=$(sed -n 's/^images=//p' "$out")
echo "images=$images"
run_step scenarios "Build the recipe images (debootstrap needs root; skipped when loaded or pulled)" \
    IMAGES="$images" OCS_HARNESS_IMAGES=local
# The same step when an image is missing: the binary runs under the sudo stand-in (the
# others are present, so `images --build` finds them built).
run_step scenarios "Build the recipe images (debootstrap needs root; skipped when loaded or pulled)" \
    IMAGES="$images ocs-harness/not-built-here:0" OCS_HARNESS_IMAGES=local
run_step scenarios "Run the scenarios" \
    OCS_HARNESS_JUNIT_DIR="$plugin/target/ocs-harness/junit" OCS_HARNESS_IMAGES=local \
    EVENT=push TIME_BUDGETS=true
run_step scenarios "Keep this run's times (a green run of the default branch)"
grep -q '^kept=1$' "$out" || { echo "error: the default branch's times were not kept" >&2; exit 1; }
mkdir -p "$work/shards/ocs-harness-shard-1"
cp "$plugin"/target/ocs-harness/junit/*.xml "$work/shards/ocs-harness-shard-1/junit-1.xml"

fresh_job merge "the JUnit merge of shards (job merge, with the push's report as shard 1)"
mv "$work/shards" "$plugin/shards"
run_step merge "Merge the shards' JUnit reports into one, with the job summary"
head -n 3 "$summary"
rm -rf "$plugin/shards" "$plugin/junit"

fresh_job pull-request "pull request whose task became 3x slower (DELAY=6.0)"
rc=0
run_step scenarios "Run the scenarios" \
    OCS_HARNESS_JUNIT_DIR="$plugin/target/ocs-harness/junit" OCS_HARNESS_IMAGES=local \
    EVENT=pull_request TIME_BUDGETS=true DELAY=6.0 >"$work/pr.log" 2>&1 || rc=$?
tail -n 1 "$work/pr.log"
grep -E 'time budgets|over its budget' "$work/pr.log" | head -n 3
[ "$rc" -ne 0 ] || { echo "error: the 3x slower pull request passed" >&2; exit 1; }
grep -q "step 2 (wait fake.delay_task (timeout 30s)) took .*, over its budget" "$work/pr.log" \
    || { echo "error: the pull request failed, but not on the slower step's budget:" >&2; tail -40 "$work/pr.log" >&2; exit 1; }

fresh_job compare "the comparison of two image sets (job compare, as root by the binary's path)"
run_step compare "Compare the image sets" BASELINE="$root/images/default.yaml" \
    CANDIDATE="$root/images/default.yaml" SCENARIOS=scenarios/
grep -q '^code=0$' "$out" || { echo "error: compare of a set with itself did not exit 0" >&2; cat "$out" >&2; exit 1; }
echo "ok: the installed binary ran every step in a workspace that has the harness as a" \
     "dependency only; the 3x slower task failed the pull request on its time budget"
