#!/usr/bin/env bash
# A loopback image registry for the registry tests (harness/tests/registry.rs).
#
#   .ci/registry.sh start   install the registry server if missing (Debian's docker-registry),
#                           start it on 127.0.0.1:<free port> with storage in a temp dir, push
#                           the local recipe images under published-style names
#                           (<registry>/simonsobs/ocs:v0.12.1 and :v0.11.3,
#                           .../ocs-crossbar:latest and :v0.12.1), remove those local names again, and print
#                           OCS_HARNESS_TEST_REGISTRY=127.0.0.1:<port>
#   .ci/registry.sh stop    stop it and remove its storage
#
# State lives in target/ocs-harness/registry/ (pid, port, config, storage). The engine accepts
# plain HTTP for registries on 127.0.0.0/8. Only the names this script tags are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
state=target/ocs-harness/registry
bin=/usr/bin/docker-registry

start() {
    if [ ! -x "$bin" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
    fi
    stop >/dev/null 2>&1 || true
    mkdir -p "$state/storage"
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$state/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $PWD/$state/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    "$bin" serve "$state/config.yml" >"$state/registry.log" 2>&1 &
    echo $! >"$state/pid"
    echo "$port" >"$state/port"
    local deadline=$((SECONDS + 15))
    until curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
            echo "error: the registry did not answer on 127.0.0.1:$port within 15 s:" >&2
            cat "$state/registry.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    local reg="127.0.0.1:$port"
    # The recipe images (built if missing), pushed under the published names.
    local lines ocs crossbar
    lines=$(cargo run -q -p ocs-harness -- images --images local --build)
    ocs=$(awk '$1 == "ocs" {print $2}' <<<"$lines")
    crossbar=$(awk '$1 == "crossbar" {print $2}' <<<"$lines")
    # The previous ocs release too, for the registry compare test.
    lines=$(cargo run -q -p ocs-harness -- images --images images/ocs-0.11.3.yaml --build)
    local ocs_old
    ocs_old=$(awk '$1 == "ocs" {print $2}' <<<"$lines")
    for pair in "$ocs_old $reg/simonsobs/ocs:v0.11.3" \
                "$ocs $reg/simonsobs/ocs:v0.12.1" \
                "$crossbar $reg/simonsobs/ocs-crossbar:latest" \
                "$crossbar $reg/simonsobs/ocs-crossbar:v0.12.1"; do
        set -- $pair
        docker tag "$1" "$2"
        docker push -q "$2" >/dev/null
        docker rmi "$2" >/dev/null
    done
    echo "OCS_HARNESS_TEST_REGISTRY=$reg"
}

stop() {
    if [ -f "$state/pid" ]; then
        kill "$(cat "$state/pid")" 2>/dev/null || true
        rm -f "$state/pid"
    fi
    rm -rf "$state/storage"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
