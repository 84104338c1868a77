#!/usr/bin/env bash
# A loopback image registry for the registry tests (harness/tests/registry.rs).
#
#   .ci/registry.sh start   install the registry server if missing (Debian's docker-registry),
#                           start it on 127.0.0.1:<free port> with storage in a temp dir, push
#                           the local recipe images under published-style names
#                           (<registry>/simonsobs/ocs:v0.12.1 and :v0.11.3,
#                           .../ocs-crossbar:latest and :v0.12.1), remove those local names again, and print
#                           OCS_HARNESS_TEST_REGISTRY=127.0.0.1:<port>
#   .ci/registry.sh stop [HOST:PORT]
#                           stop that registry (default: $OCS_HARNESS_TEST_REGISTRY) and remove
#                           its storage
#
# Each registry's state lives in target/ocs-harness/registry/<port>/ (pid, config, storage,
# log), so concurrent jobs each start and stop their own; a start that fails at any point
# (the server does not answer, an image build or a push fails) stops its registry and removes
# its state before exiting non-zero. The engine accepts plain HTTP for registries on
# 127.0.0.0/8. Only the names this script tags are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
state=target/ocs-harness/registry
bin=/usr/bin/docker-registry

start() {
    if [ ! -x "$bin" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
    fi
    local port dir
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    dir=$state/$port
    mkdir -p "$dir/storage"
    # From here on, any failure stops this registry and removes its state.
    trap 'status=$?; stop_dir "$dir"; exit $status' ERR
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $PWD/$dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    "$bin" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    echo $! >"$dir/pid"
    local deadline=$((SECONDS + 15))
    until curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            echo "error: the registry did not answer on 127.0.0.1:$port within 15 s:" >&2
            cat "$dir/registry.log" >&2
            false
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

stop_dir() {
    local dir=$1
    if [ -f "$dir/pid" ]; then
        kill "$(cat "$dir/pid")" 2>/dev/null || true
    fi
    rm -rf "$dir"
    # Local names tagged for this registry (left when a push failed).
    docker images --format '{{.Repository}}:{{.Tag}}' | grep "^127.0.0.1:${dir##*/}/" \
        | xargs -r docker rmi >/dev/null 2>&1 || true
}

stop() {
    local reg=${1:-${OCS_HARNESS_TEST_REGISTRY:-}}
    if [ -z "$reg" ]; then
        echo "error: which registry? give HOST:PORT or set OCS_HARNESS_TEST_REGISTRY" >&2
        exit 2
    fi
    stop_dir "$state/${reg##*:}"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
