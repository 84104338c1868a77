"""The Synaccess power strip's web interface as socs's test mocks it
(tests/integration/test_synacc_integration.py, fixture `http_mock`): GET /cmd.cgi answers by
its query string. The route and its answers are upstream's; here the mock runs as a service,
on every interface of its container (upstream: localhost:8000, beside the agent).

    python3 synacc.py [PORT]      # default 8000; logs `mock ready` once it answers

Each request it serves is one line on stdout, `served GET /cmd.cgi?<query> -> <status>`
(werkzeug's own request lines, which carry the date, are turned off). A query upstream's
route does not know fails its `assert` (500), as upstream's does.
"""

import logging
import signal
import sys

from flask import request
from http_server_mock import HttpServerMock

app = HttpServerMock(__name__)
logging.getLogger("werkzeug").setLevel(logging.WARNING)


@app.after_request
def log_request(response):
    query = request.query_string.decode()
    print(f"served {request.method} {request.path}?{query} -> {response.status_code}", flush=True)
    return response


@app.route("/cmd.cgi", methods=["GET"])
def route_fn():
    query = request.query_string.decode()
    print("query:", query, flush=True)
    # test_synacc_startup
    if query == "$A5":
        return "$A0,00101"
    # test_synacc_reboot
    elif query == "$A4%203":
        return ""
    # test_synacc_set_outlet_on (recall that %20 is a space)
    elif query == "$A3%204%201":
        return ""
    # test_synacc_set_outlet_off (recall that %20 is a space)
    elif query == "$A3%203%200":
        return ""
    # test_synacc_set_all
    elif query == "$A7%201":
        return ""
    else:
        assert False, "Bad query"


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    with app.run("0.0.0.0", port):
        print("mock ready", flush=True)
        signal.sigwait([signal.SIGTERM, signal.SIGINT])
