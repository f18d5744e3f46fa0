"""The one HTTP client every latency figure uses, and the trivial server that gives its floor.

Client: ``urllib.request`` (http.client underneath), a NEW TCP connection per request (urllib
sends ``Connection: close``), no gzip unless asked, the whole body read. Time = from opening the
request to the last byte of the body, measured with ``time.perf_counter``.
"""

from __future__ import annotations

import base64
import math
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

CLIENT_DESCRIPTION = (
    "urllib.request, a new TCP connection per request (Connection: close), "
    "no gzip, full body read; time = open → last body byte"
)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]  # names lower-cased
    seconds: float


def get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 30) -> Reply:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    started = time.perf_counter()
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
            reply_headers = {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:  # 304, 404, ... (still a complete answer)
        body = error.read()
        status = error.code
        reply_headers = {k.lower(): v for k, v in error.headers.items()}
        error.close()
    return Reply(status, body, reply_headers, time.perf_counter() - started)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


@dataclass
class Stats:
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


FLOOR_SERVER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class FloorServer:
    """``http.server`` (HTTP/1.0, 2-byte JSON body) in its own process, on a free loopback port."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", FLOOR_SERVER], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)
