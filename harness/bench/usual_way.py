"""The usual way, for `ocs-harness bench`: what ocs's own integration tests do.

`docker compose up` of a compose file with fixed names and ports, then the readiness checks of
ocs's test helpers: `ocs.testing.check_crossbar_connection` (polls crossbar's /info) and the
retry loop of `ocs.testing.create_client_fixture` (OCSClient once a second), for every agent.
Prints one JSON line: seconds to ready, to the first status reply, and to the stack being down.

Usage: python usual_way.py COMPOSE_DIR PORT INSTANCE_ID...
"""
import json
import os
import subprocess
import sys
import time


def main():
    compose_dir, port, instances = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    os.environ["OCS_CONFIG_DIR"] = compose_dir  # the client's SCF: hub on localhost:PORT
    from ocs.ocs_client import OCSClient
    from ocs.testing import check_crossbar_connection

    compose = ["docker-compose", "-f", os.path.join(compose_dir, "docker-compose.yml"),
               "-p", "ocsh-usual"]
    t0 = time.time()
    subprocess.run(compose + ["up", "-d"], check=True, capture_output=True)
    try:
        check_crossbar_connection(port=port, interval=5, max_attempts=6)
        clients = {}
        for iid in instances:
            # The loop of ocs.testing.create_client_fixture (timeout=30).
            for _ in range(30):
                try:
                    clients[iid] = OCSClient(iid)
                    break
                except RuntimeError:
                    time.sleep(1)
            else:
                raise RuntimeError(f"{iid} did not come up")
        ready = time.time() - t0
        for iid, c in clients.items():
            c.delay_task.status()
        first_status = time.time() - t0
    finally:
        subprocess.run(compose + ["down", "-t", "10"], check=True, capture_output=True)
    print(json.dumps({"ready": ready, "first_status": first_status, "down": time.time() - t0}))


if __name__ == "__main__":
    main()
