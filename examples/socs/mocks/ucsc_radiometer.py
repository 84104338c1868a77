"""The UCSC radiometer's web server as socs's test mocks it
(tests/integration/test_ucsc_radiometer_agent_integration.py, fixture `http_mock`): GET / gives
{"pwv": 1.2, "timestamp": <now, whole seconds>}. The route is upstream's; here the mock runs as a
service, on every interface of its container (upstream: 127.0.0.1, beside the agent).

    python3 ucsc_radiometer.py [PORT]      # default 5000; logs `mock ready` once it answers

Each request it serves is one line on stdout, `served GET / -> 200` (werkzeug's own request
lines, which carry the date, are turned off).
"""

import logging
import signal
import sys
import time
from datetime import datetime

from flask import jsonify, request
from http_server_mock import HttpServerMock

app = HttpServerMock(__name__)
logging.getLogger("werkzeug").setLevel(logging.WARNING)


@app.after_request
def log_request(response):
    print(f"served {request.method} {request.path} -> {response.status_code}", flush=True)
    return response


@app.route("/", methods=["GET"])
def route_fn():
    if request.method == "GET":
        time_now = datetime.now()
        timestamp = time.mktime(time_now.timetuple())
        data = {'pwv': 1.2, 'timestamp': timestamp}
        return jsonify(data)
    else:
        assert False, "Bad query"


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with app.run("0.0.0.0", port):
        print("mock ready", flush=True)
        signal.sigwait([signal.SIGTERM, signal.SIGINT])
