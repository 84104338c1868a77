"""ocs-harness device emulator: a fake piece of hardware answering a line protocol with
responses a scenario defines, with the semantics of socs.testing.device_emulator
(define_responses, update_responses, get_response). Standard library only, so that it runs
in any image with Python 3 (every OCS image).

Serve (the device's container entrypoint), configured by a JSON file (argument 1):

    {"name": "ls425", "port": 9001, "serial": false, "encoding": "utf-8",
     "responses": {"*IDN?": "LSCI,MODEL425,LSA425T,1.3"}, "default": null}

A response is a string, null (no reply), a list (given in turn until used up, as socs pops
it) or {"reply": <response>, "delay": <seconds>} (the reply after that long). With
"encoding": null, commands and responses are bytes, written as hex.

TCP ("serial": false): every chunk received is one message (socs's `recv(4096)`), stripped
and decoded; the response is sent as is. Serial ("serial": true; the agent's pty relays to
this port): every line is one message, and the response goes back followed by CRLF, as
socs's serial relay does.

Control it while it runs (a `device` step of the scenario runs these in its container):

    python3 emulator.py define '{"responses": {...}, "default": null}'
    python3 emulator.py update '{"responses": {...}}'
    python3 emulator.py received

Each prints one JSON line: what the emulator did, or every message received so far.
"""

import copy
import json
import os
import signal
import socket
import sys
import threading
import time

# The control socket (the environment can move it: tests run several emulators on one host).
CONTROL = os.environ.get("OCS_HARNESS_DEVICE_CONTROL", "/tmp/ocs-harness-device.sock")


def log(name, text):
    sys.stdout.write(f"DeviceEmulator {name}: {text}\n")
    sys.stdout.flush()


class Device:
    def __init__(self, config):
        self.name = config["name"]
        self.encoding = config.get("encoding", "utf-8")
        self.serial = bool(config.get("serial", False))
        self.lock = threading.Lock()
        self.received = []
        self.responses = {}
        self.default = None
        self.define(config.get("responses", {}), config.get("default"))

    # socs's DeviceEmulator.define_responses
    def define(self, responses, default=None):
        with self.lock:
            self.responses = copy.deepcopy(responses)
            self.default = default
        log(self.name, f"responses set to {responses}")
        log(self.name, f"default response set to '{default}'")

    # socs's DeviceEmulator.update_responses
    def update(self, responses):
        with self.lock:
            self.responses.update(copy.deepcopy(responses))
            current = dict(self.responses)
        log(self.name, f"responses set to {current}")

    # socs's DeviceEmulator.get_response
    def get_response(self, msg):
        with self.lock:
            if self.responses is None:
                return None
            if msg not in self.responses and self.default is not None:
                return self.default
            try:
                response = self.responses[msg]
                if isinstance(response, list):
                    response = response.pop(0)
            except Exception as e:  # as socs: an unknown command or a used-up list
                log(self.name, f"no response to {msg!r}: {type(e).__name__} {e}")
                response = None
            return response

    def message(self, raw):
        """The message a chunk or line `raw` (bytes) stands for, or None when empty."""
        if self.encoding:
            text = raw.strip().decode(self.encoding, errors="replace")
            return text or None
        return raw.hex() if raw else None

    def answer(self, conn, raw):
        msg = self.message(raw)
        if msg is None:
            return
        with self.lock:
            self.received.append(msg)
        log(self.name, f"msg={msg!r}")
        response = self.get_response(msg)
        if isinstance(response, dict):
            time.sleep(float(response.get("delay", 0)))
            response = response.get("reply")
        if response is None:
            return
        log(self.name, f"response={response!r}")
        if self.encoding:
            data = response.encode(self.encoding)
        else:
            data = bytes.fromhex(response)
        if self.serial:
            data += b"\r\n"
        conn.sendall(data)

    def serve_client(self, conn, address):
        log(self.name, f"client connection made from {address}")
        buffer = b""
        try:
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                if not self.serial:
                    self.answer(conn, chunk)
                    continue
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self.answer(conn, line if self.encoding else line + b"\n")
        except OSError as e:
            log(self.name, f"connection from {address}: {e}")
        finally:
            conn.close()
            log(self.name, f"client {address} disconnected")

    def control(self, request):
        action = request.get("action")
        if action == "define":
            self.define(request.get("responses", {}), request.get("default"))
            return {"ok": True, "action": action, "responses": len(request.get("responses", {}))}
        if action == "update":
            self.update(request.get("responses", {}))
            return {"ok": True, "action": action, "responses": len(request.get("responses", {}))}
        if action == "received":
            with self.lock:
                return {"ok": True, "action": action, "received": list(self.received)}
        return {"ok": False, "error": f"unknown action {action!r}"}


def serve_control(device):
    if os.path.exists(CONTROL):
        os.remove(CONTROL)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(CONTROL)
    server.listen(8)

    def loop():
        while True:
            conn, _ = server.accept()
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                try:
                    reply = device.control(json.loads(data))
                except Exception as e:
                    reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                conn.sendall((json.dumps(reply) + "\n").encode())

    threading.Thread(target=loop, daemon=True).start()


def serve(config_path):
    with open(config_path) as f:
        config = json.load(f)
    device = Device(config)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    serve_control(device)
    port = int(config.get("port", 9001))
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(8)
    kind = "serial (line) device" if device.serial else "TCP device"
    log(device.name, f"{kind} listening on port {port}")
    while True:
        conn, address = server.accept()
        threading.Thread(target=device.serve_client, args=(conn, address), daemon=True).start()


def request(action, text):
    body = json.loads(text) if text else {}
    body["action"] = action
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(CONTROL)
    except OSError as e:
        sys.exit(f"the device emulator is not running in this container ({CONTROL}: {e})")
    client.settimeout(30)
    client.sendall((json.dumps(body) + "\n").encode())
    data = b""
    while not data.endswith(b"\n"):
        chunk = client.recv(65536)
        if not chunk:
            break
        data += chunk
    reply = json.loads(data)
    print(json.dumps(reply))
    sys.exit(0 if reply.get("ok") else 1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) in (2, 3) and sys.argv[1] in ("define", "update", "received"):
        request(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "")
    else:
        sys.exit(__doc__)
