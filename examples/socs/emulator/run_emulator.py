"""socs's device emulator as a service of a stack: `socs.testing.device_emulator.DeviceEmulator`
(from the socs image) on a TCP port, answering with the responses a scenario gives.

Serve (the service's entrypoint), configured by its environment:

    EMULATOR_PORT       the TCP port, on every interface of the container (default 9001)
    EMULATOR_RESPONSES  a JSON object, command -> response, as `define_responses` takes it:
                        a string, a list (given in turn until used up) or null (no reply)
    EMULATOR_DEFAULT    the response to a command not in the responses (default: none)
    EMULATOR_ENCODING   `utf-8` (default), or `none` for raw bytes: then every command and
                        response is written as hex (`"0999..."`)

    python3 run_emulator.py

Change the responses mid-run (an `exec` step in the service's container), as a socs test
calls `emulator.define_responses(...)` / `emulator.update_responses(...)`; returns once the
running emulator has taken them:

    python3 run_emulator.py define '{"KRDG? 1": "+1.0E-03"}' [DEFAULT]
    python3 run_emulator.py update '{"KRDG? 1": "+2.0E-03"}'

The emulator logs every command it receives (`msg='...'`) and every response
(`response='...'`) to stderr: `logs:` steps assert what the device received.
"""

import json
import logging
import os
import signal
import socket
import sys
import time
import types

from socs.testing import device_emulator

CONTROL = "/tmp/emulator-control.json"
POLL = 0.05


class _AllInterfaces(socket.socket):
    """socs's emulator binds 127.0.0.1 (in socs's tests the agent runs beside it on the host);
    in a container other containers reach it on the stack's network, so it listens on every
    interface instead."""

    def bind(self, address):
        host, port = address
        super().bind(("0.0.0.0" if host == "127.0.0.1" else host, port))


def _decode(responses, encoding):
    if encoding is not None:
        return responses

    def raw(value):
        if value is None:
            return None
        if isinstance(value, list):
            return [raw(v) for v in value]
        return bytes.fromhex(value)

    return {bytes.fromhex(k): raw(v) for k, v in responses.items()}


def serve():
    encoding = os.environ.get("EMULATOR_ENCODING", "utf-8")
    encoding = None if encoding.lower() == "none" else encoding
    port = int(os.environ.get("EMULATOR_PORT", "9001"))
    responses = _decode(json.loads(os.environ.get("EMULATOR_RESPONSES", "{}")), encoding)
    default = os.environ.get("EMULATOR_DEFAULT")

    # The emulator's own log format, without its timestamp (the harness stamps each line).
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.getLogger("DeviceEmulator").addHandler(handler)

    device_emulator.socket = types.SimpleNamespace(
        socket=_AllInterfaces, AF_INET=socket.AF_INET, SOCK_STREAM=socket.SOCK_STREAM
    )
    # reconnect: an agent that reconnects (or restarts) finds the device again.
    device = device_emulator.DeviceEmulator(responses, encoding=encoding, reconnect=True)
    device.define_responses(responses, default_response=default)

    def stop(signum, _frame):
        device.logger.info(f"signal {signum}: shutting down")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    device.create_tcp_relay(port)
    device.logger.info(f"Device emulator listening on port {device.socket_port}")

    while True:
        try:
            with open(CONTROL) as f:
                request = json.load(f)
        except FileNotFoundError:
            time.sleep(POLL)
            continue
        new = _decode(request["responses"], encoding)
        if request["action"] == "define":
            device.define_responses(new, default_response=request.get("default"))
        else:
            device.update_responses(new)
        os.remove(CONTROL)


def control(action, text, default=None, timeout=10.0):
    request = {"action": action, "responses": json.loads(text), "default": default}
    tmp = CONTROL + ".tmp"
    with open(tmp, "w") as f:
        json.dump(request, f)
    os.rename(tmp, CONTROL)
    deadline = time.monotonic() + timeout
    while os.path.exists(CONTROL):
        if time.monotonic() > deadline:
            sys.exit(f"the emulator did not take the responses within {timeout} s "
                     f"({CONTROL} is still there): is it running in this container?")
        time.sleep(POLL)
    print(f"{action}: {len(request['responses'])} responses")


if __name__ == "__main__":
    if len(sys.argv) == 1:
        serve()
    elif len(sys.argv) in (3, 4) and sys.argv[1] in ("define", "update"):
        control(*sys.argv[1:])
    else:
        sys.exit(__doc__)
