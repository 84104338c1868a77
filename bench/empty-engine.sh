#!/usr/bin/env bash
# An empty Docker engine beside the usual one, for `ocs-harness bench --what images` (from no
# images at all, without removing images that other work on the machine uses).
#
#   bench/empty-engine.sh start   start dockerd (root) with its own data root, exec root, socket
#                                 and containerd namespace under target/ocs-harness/bench-engine/;
#                                 its own default bridge (ocshbench0, 10.213.255.1/24), no
#                                 iptables rules of its own but one FORWARD rule accepting
#                                 traffic within 10.213.0.0/16, its networks' pool; print
#                                 DOCKER_HOST=unix://.../docker.sock
#   bench/empty-engine.sh stop    stop it and remove its data (images, containers, networks)
#
# Never `--bridge none`: a dockerd started so deletes the host's docker0 at start-up, which cuts
# the usual engine's default network (its builds then fail with "could not find bridge docker0").
# Its storage driver is the usual engine's. Published ports are served by docker-proxy on the
# host's loopback, and the registry on 127.0.0.1 is reached as from the usual engine.
set -euo pipefail
cd "$(dirname "$0")/.."
state=$PWD/target/ocs-harness/bench-engine
sock=$state/docker.sock
bridge=ocshbench0
pool=10.213.0.0/16

start() {
    stop >/dev/null 2>&1 || true
    mkdir -p "$state"
    if ! ip link show "$bridge" >/dev/null 2>&1; then
        ip link add "$bridge" type bridge
        ip addr add 10.213.255.1/24 dev "$bridge"
        ip link set "$bridge" up
    fi
    # The usual engine sets FORWARD's policy to DROP, and bridged traffic passes through
    # iptables (br_netfilter): with --iptables=false this engine adds no rule of its own, so
    # containers on its networks could not reach each other (an agent never connects to
    # crossbar). Accept its own address pool, removed again on stop.
    iptables -C FORWARD -s "$pool" -d "$pool" -j ACCEPT 2>/dev/null \
        || iptables -I FORWARD -s "$pool" -d "$pool" -j ACCEPT
    local driver
    driver=$(docker info --format '{{.Driver}}' 2>/dev/null || echo overlay2)
    # A config file of its own: the usual one (/etc/docker/daemon.json) names the usual data root.
    printf '{"data-root": "%s", "storage-driver": "%s", "mtu": 1400}\n' "$state/root" "$driver" \
        >"$state/daemon.json"
    dockerd --config-file "$state/daemon.json" --exec-root "$state/exec" \
        --pidfile "$state/dockerd.pid" -H "unix://$sock" \
        --containerd-namespace ocsh-bench --containerd-plugins-namespace ocsh-bench-plugins \
        --bridge "$bridge" --iptables=false --ip-masq=false --ip-forward=false \
        --default-address-pool "base=$pool,size=24" >"$state/dockerd.log" 2>&1 &
    local deadline=$((SECONDS + 30))
    until docker -H "unix://$sock" version >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            echo "error: the empty engine did not answer on $sock within 30 s:" >&2
            tail -n 20 "$state/dockerd.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "DOCKER_HOST=unix://$sock"
}

stop() {
    if [ -f "$state/dockerd.pid" ]; then
        local pid deadline=$((SECONDS + 30))
        pid=$(cat "$state/dockerd.pid")
        kill "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do
            if [ $SECONDS -ge $deadline ]; then
                echo "error: the empty engine (pid $pid) did not stop within 30 s" >&2
                exit 1
            fi
            sleep 0.2
        done
    fi
    rm -rf "$state"
    while iptables -D FORWARD -s "$pool" -d "$pool" -j ACCEPT 2>/dev/null; do :; done
    if ip link show "$bridge" >/dev/null 2>&1; then ip link delete "$bridge"; fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
