"""Write-path figures on the lab (``make bench``): PATCH and create latency until confirmed, an
import of 1,000 endpoints, AMI actions per write, beside Asterisk's own reload of the same set.

Every write goes through the real service: validate, write, ``module reload res_pjsip.so``,
read back. The service's AMI traffic passes the benchmark's counting proxy.
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.amiproxy import AmiCountingProxy
from ispbx_lab.lab import Lab

SAMPLES = 10
IMPORT_ROWS = 1000
FIRST_NEW = 900_000


@dataclass
class ManageResult:
    patch: list[float] = field(default_factory=list)
    create_visible: list[float] = field(default_factory=list)
    import_seconds: float = 0.0
    import_reloads: int = 0
    actions_per_write: Counter[str] = field(default_factory=Counter)
    asterisk_reload: list[float] = field(default_factory=list)

    def lines(self) -> list[str]:
        if not self.patch:
            return []
        reload = statistics.median(self.asterisk_reload) if self.asterisk_reload else 0.0
        actions = sum(v for k, v in self.actions_per_write.items() if k.lower() != "ping")
        detail = ", ".join(f"{k} {v}" for k, v in sorted(self.actions_per_write.items()))
        return [
            "Managing endpoints (validate → write → module reload res_pjsip.so → read back)",
            f"  Asterisk's own module reload (asterisk -rx), one line changed"
            f"  median {reload:.2f} s",
            f"  PATCH one endpoint → 200, confirmed    median {_median(self.patch):.2f} s"
            f"  (max {max(self.patch):.2f}, n={len(self.patch)};"
            f" {_median(self.patch) / max(reload, 1e-9):.2f}x Asterisk's reload)",
            f"  POST create → in GET /endpoints with in_asterisk: true  median"
            f" {_median(self.create_visible):.2f} s (max {max(self.create_visible):.2f})",
            f"  import of {IMPORT_ROWS:,} new endpoints, end to end  {self.import_seconds:.2f} s,"
            f" reloads: {self.import_reloads}",
            f"  AMI actions for one PATCH (and the resync its reload sets off): {actions}"
            f" ({detail})",
            "",
        ]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _request(
    method: str, url: str, token: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    data = None
    all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
    if isinstance(body, bytes):
        data = body
    elif body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode(errors="replace")


def _etag(base: str, token: str, extension: str) -> str:
    _, headers, _ = _request("GET", f"{base}/endpoints/{extension}/config", token)
    return headers.get("ETag") or headers.get("etag") or ""


def _asterisk_reload(lab: Lab, result: ManageResult) -> None:
    """Asterisk's own figure: one line changed by hand, then module reload."""
    conf = lab.pjsip_conf
    for i in range(3):
        time.sleep(1.05)  # Asterisk skips a reload when the mtime second did not change
        conf.write_bytes(conf.read_bytes() + f"; bench touch {i}\n".encode())
        started = time.perf_counter()
        lab.reload_pjsip()
        result.asterisk_reload.append(time.perf_counter() - started)


def _visible(base: str, token: str, extension: str, deadline: float) -> bool:
    while time.perf_counter() < deadline:
        _, _, body = _request("GET", f"{base}/endpoints?q={extension}", token)
        rows = body.get("endpoints", []) if isinstance(body, dict) else []
        if any(r["extension"] == extension and r["in_asterisk"] for r in rows):
            return True
        time.sleep(0.005)
    return False


def _settle(proxy: AmiCountingProxy, quiet: float = 3.0, limit: float = 60.0) -> None:
    """Until the service sent no AMI action for ``quiet`` seconds (the resyncs that Asterisk's
    own reloads set off are over), so a write is measured alone."""
    deadline = time.monotonic() + limit
    last = proxy.counts()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = proxy.counts()
        if now - last == Counter() or sum((now - last).values()) == (now - last)["Ping"]:
            return
        last = now


def run(base: str, token: str, lab: Lab, proxy: AmiCountingProxy, extension: str) -> ManageResult:
    result = ManageResult()
    _asterisk_reload(lab, result)
    _settle(proxy)
    for i in range(SAMPLES):
        etag = _etag(base, token, extension)
        body = {"endpoint": {"language": f"l{i}"}}
        before = proxy.counts()
        started = time.perf_counter()
        status, _, answer = _request(
            "PATCH", f"{base}/endpoints/{extension}", token, body, {"If-Match": etag}
        )
        result.patch.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"PATCH answered {status}: {answer}")
        if i == 0:
            _settle(proxy)  # the resync the reload set off is done by now
            result.actions_per_write = proxy.counts() - before
    for i in range(SAMPLES):
        name = str(FIRST_NEW + i)
        started = time.perf_counter()
        status, _, answer = _request("POST", f"{base}/endpoints", token, {"extension": name})
        if status != 201 or not _visible(base, token, name, started + 30):
            raise RuntimeError(f"create answered {status}: {answer}")
        result.create_visible.append(time.perf_counter() - started)
    rows = "\n".join(str(FIRST_NEW + 1000 + i) for i in range(IMPORT_ROWS))
    before = proxy.counts()
    started = time.perf_counter()
    status, _, answer = _request(
        "POST",
        f"{base}/endpoints/import",
        token,
        f"extension\n{rows}\n".encode(),
        {"Content-Type": "text/csv"},
    )
    result.import_seconds = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"import answered {status}: {str(answer)[:500]}")
    result.import_reloads = (proxy.counts() - before)["Reload"]
    return result
