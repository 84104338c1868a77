#!/usr/bin/env bash
# Lints the GitHub workflow files: GitHub's workflow schema (check-jsonschema's built-in
# `vendor.github-workflows`) and zizmor's static analysis of Actions (offline audits). Both tools
# are installed with pip, pinned, into a virtual environment under target/ (reused when present).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/lint-workflows-venv
if [ ! -x "$venv/bin/zizmor" ] || [ ! -x "$venv/bin/check-jsonschema" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        'check-jsonschema==0.35.0' 'zizmor==1.18.0'
fi

files=(.github/workflows/*.yml)
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${files[@]}"
"$venv/bin/zizmor" --offline --no-progress "${files[@]}"
