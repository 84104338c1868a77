#!/usr/bin/env bash
# The book (docs/): builds it with mdBook, checks every relative link and {{#include}} of the
# book and the README, and checks the scenario examples with the binary's `check`: every file of
# docs/examples/ (the pages include parts of them), the reference file the book includes whole,
# and every whole scenario written inline in a ```yaml block of the README or the book (run in a
# copy of docs/examples/plugin/, whose files their relative paths name). A scenario fragment
# written inline instead of included fails too. The book's Rust examples are doctests of the
# crate (harness/src/lib.rs), run by `cargo test`.
#
# mdBook is installed when `mdbook` is missing, pinned, into target/ci-tools/ (reused when
# present). OCS_HARNESS_BIN: an already built binary (else it is built here).
set -euo pipefail
cd "$(dirname "$0")/.."

MDBOOK_VERSION=0.5.4
mdbook=$(command -v mdbook || true)
if [ -z "$mdbook" ]; then
    mdbook=target/ci-tools/bin/mdbook
    if [ ! -x "$mdbook" ]; then
        echo "installing mdbook $MDBOOK_VERSION into target/ci-tools (cargo install, once)"
        cargo install --quiet --locked mdbook --version "$MDBOOK_VERSION" --root target/ci-tools
    fi
fi
"$mdbook" --version

# mdbook logs a missing include or a broken SUMMARY.md entry and may still exit 0: fail on its
# ERROR lines as well as on its exit code.
log=$(mktemp)
examples=$(mktemp -d)
trap 'rm -rf "$log" "$examples"' EXIT
if ! "$mdbook" build docs 2>&1 | tee "$log"; then
    echo "error: mdbook build docs failed" >&2
    exit 1
fi
if grep -q '\[ERROR\]\|ERROR ' "$log"; then
    echo "error: mdbook build docs reported errors (above)" >&2
    exit 1
fi

python3 .ci/book-check.py links

harness=${OCS_HARNESS_BIN:-}
if [ -z "$harness" ]; then
    cargo build -q --locked -p ocs-harness --bin ocs-harness
    harness=target/debug/ocs-harness
fi
cp -r docs/examples/plugin "$examples/plugin"
rm -f "$examples"/plugin/scenarios/*.yaml
python3 .ci/book-check.py scenarios "$examples/plugin/scenarios"
"$harness" check docs/examples/ docs/examples/plugin/scenarios/ scenarios/reference.yaml.example \
    "$examples/plugin/scenarios/"
