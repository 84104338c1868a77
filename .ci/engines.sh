#!/usr/bin/env bash
# The tools the engine tests (harness/tests/engines.rs) need besides Docker: socat (a TCP and a
# TLS proxy in front of the engine's socket) and openssl (the TLS test's certificates).
# Installed with apt-get when missing; the tests fail with a clear message without them.
set -euo pipefail
missing=()
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} (for the engine tests)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
socat -V | sed -n 2p
openssl version
