#!/usr/bin/env bash
# Lints the GitHub workflow files: GitHub's workflow schema (check-jsonschema's built-in
# `vendor.github-workflows`), zizmor's static analysis of Actions (offline audits), and
# .ci/check-workflows.py: the rules GitHub applies when a run starts with a call of a reusable
# workflow (permissions, inputs, secrets, `uses` references), on the workflows here, on the
# caller `ocs-harness init` writes and on the callers the README and the book (docs/src) show,
# after its self-test on .ci/workflow-fixtures (today's failure must still be caught). The tools are installed with
# pip, pinned, into a virtual environment under target/ (reused when present).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/lint-workflows-venv
if [ ! -x "$venv/bin/zizmor" ] || [ ! -x "$venv/bin/check-jsonschema" ] \
    || ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        'check-jsonschema==0.35.0' 'zizmor==1.18.0' 'PyYAML==6.0.2'
fi

# The caller `init` writes, from the binary as built now (OCS_HARNESS_BIN: an already built one).
harness=${OCS_HARNESS_BIN:-}
if [ -z "$harness" ]; then
    cargo build -q --locked -p ocs-harness --bin ocs-harness
    harness=target/debug/ocs-harness
fi
plugin=$(mktemp -d)
trap 'rm -rf "$plugin"' EXIT
mkdir -p "$plugin/agent"
echo 'FROM simonsobs/ocs:v0.11.3' >"$plugin/agent/Dockerfile"
"$harness" init --dir "$plugin" --build agent --agent-class FakeDataAgent --instance-id fake >/dev/null
caller=$plugin/.github/workflows/ocs-harness.yml

files=(.github/workflows/*.yml "$caller")
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${files[@]}"
"$venv/bin/zizmor" --offline --no-progress "${files[@]}"

"$venv/bin/python" .ci/check-workflows.py --self-test .ci/workflow-fixtures
repository=$(sed -n 's|^ *uses: \([^/]*/[^/]*\)/\.github/workflows/plugin\.yml@.*|\1|p' \
    "$caller")
markdown=(--markdown README.md)
for page in docs/src/*.md; do markdown+=(--markdown "$page"); done
"$venv/bin/python" .ci/check-workflows.py --repository "${repository:?init wrote no call of plugin.yml}" \
    "${markdown[@]}" "$caller"
