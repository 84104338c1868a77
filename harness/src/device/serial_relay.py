"""ocs-harness serial relay: runs first in an agent's container, makes each serial port the
scenario gives (a pty, linked at the path the agent opens, e.g. /dev/ttyUSB0) and relays its
bytes to an emulated device's TCP port, as socs's tests do with a socat pty pair; then runs
the container's own command in its place.

    python3 serial_relay.py PATH=HOST:PORT [PATH=HOST:PORT ...] -- COMMAND...

Standard library only.
"""

import os
import pty
import select
import socket
import sys
import threading
import time
import tty

CONNECT_DEADLINE = 60.0


def log(text):
    sys.stderr.write(f"serial relay: {text}\n")
    sys.stderr.flush()


def connect(host, port, path):
    deadline = time.monotonic() + CONNECT_DEADLINE
    while True:
        try:
            return socket.create_connection((host, port), timeout=5)
        except OSError as e:
            if time.monotonic() > deadline:
                log(f"{path}: the device at {host}:{port} did not accept a connection within "
                    f"{CONNECT_DEADLINE:.0f} s ({e}); giving up")
                return None
            time.sleep(0.2)


def relay(master, host, port, path):
    sock = None
    while True:
        if sock is None:
            sock = connect(host, port, path)
            if sock is None:
                return
            sock.settimeout(None)
            log(f"{path} connected to {host}:{port}")
        readable, _, _ = select.select([master, sock], [], [])
        if master in readable:
            try:
                data = os.read(master, 4096)
            except OSError:
                data = b""
            if data:
                sock.sendall(data)
        if sock in readable:
            data = sock.recv(4096)
            if not data:
                log(f"{path}: the device at {host}:{port} closed the connection; reconnecting")
                sock.close()
                sock = None
                continue
            os.write(master, data)


def main(argv):
    if "--" not in argv:
        sys.exit(__doc__)
    split = argv.index("--")
    links, command = argv[:split], argv[split + 1:]
    if not links or not command:
        sys.exit(__doc__)
    relays = []
    for link in links:
        path, _, target = link.partition("=")
        host, _, port = target.rpartition(":")
        master, slave = pty.openpty()
        tty.setraw(slave)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if os.path.lexists(path):
            os.remove(path)
        os.symlink(os.ttyname(slave), path)
        log(f"{path} -> {os.ttyname(slave)} relays to {host}:{port}")
        # the relay keeps `slave` open: the pty stays up while the agent closes and reopens it
        relays.append((master, slave, host, int(port), path))
    if os.fork() == 0:
        threads = [threading.Thread(target=relay, args=(m, h, p, path), daemon=True)
                   for m, _s, h, p, path in relays]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        os._exit(0)
    for master, _slave, _h, _p, _path in relays:
        os.close(master)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
