#!/usr/bin/env bash
# A test of .ci/registry.sh (issue 28): a start that fails stops its registry and removes its
# state, and never touches another job's registry. Run by .ci/test while its own registry
# ($OCS_HARNESS_TEST_REGISTRY) is up: a second start, whose `docker push` fails, must exit
# non-zero, leave no registry process and no state of its own, and leave the first registry
# answering. (Before the fix, the second start stopped the first, as their state was shared,
# and a failed start left its server running.)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OCS_HARNESS_TEST_REGISTRY:?run by .ci/test, with its registry up}"
state=target/ocs-harness/registry
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
real_docker=$(command -v docker)
cat >"$fake/docker" <<EOF
#!/bin/sh
[ "\$1" = push ] && { echo "push refused (the test's stand-in docker)" >&2; exit 1; }
exec "$real_docker" "\$@"
EOF
chmod +x "$fake/docker"
before=$(ls "$state")
servers_before=$(pgrep -f "docker-registry serve" | sort)
if PATH="$fake:$PATH" .ci/registry.sh start >"$fake/out" 2>&1; then
    echo "FAIL: a start whose push fails exited 0" >&2; cat "$fake/out" >&2; exit 1
fi
after=$(ls "$state")
servers_after=$(pgrep -f "docker-registry serve" | sort)
fail=0
if [ "$before" != "$after" ]; then
    echo "FAIL: the failed start left state behind: $(comm -13 <(echo "$before") <(echo "$after"))" >&2
    fail=1
fi
if [ "$servers_before" != "$servers_after" ]; then
    echo "FAIL: registry servers before: [$servers_before], after: [$servers_after]" >&2
    fail=1
fi
if ! curl -fsS "http://$OCS_HARNESS_TEST_REGISTRY/v2/" >/dev/null; then
    echo "FAIL: the first registry ($OCS_HARNESS_TEST_REGISTRY) no longer answers" >&2
    fail=1
fi
[ $fail -eq 0 ] && echo "ok: a failed registry start cleaned up after itself and left $OCS_HARNESS_TEST_REGISTRY running"
exit $fail
