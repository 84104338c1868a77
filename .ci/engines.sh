#!/usr/bin/env bash
# The tools the tests need besides Docker: socat (a TCP and a TLS proxy in front of the engine's
# socket, harness/tests/engines.rs), openssl (the TLS test's certificates) and chromium (the HTML
# report rendered headless, harness/tests/html_report.rs). Installed with apt-get when missing;
# the tests fail with a clear message without them.
set -euo pipefail
missing=()
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} (for the engine and report tests)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
socat -V | sed -n 2p
openssl version
chromium --version 2>/dev/null
