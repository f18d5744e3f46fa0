"""A hung Asterisk (``kill -STOP``) is noticed within 5 s, requests answer at once meanwhile, and
``kill -CONT`` recovers as after a restart (issue 10, item 2).

The lab has 3,000 endpoints and Asterisk is frozen while the service is still prefetching their
details, so some endpoints have none fetched yet: a request for one of them must not wait for an
Asterisk that will not answer.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ispbx_lab.lab import Lab, free_port, generate_pjsip
from ispbx_lab.sipphone import register_blocking, unregister_blocking
from tests.integration.conftest import running_lab
from tests.support import ADMIN_TOKEN, ServiceProcess, wait_for

pytestmark = pytest.mark.integration
COUNT = 3000
FIRST = 1000
LAST = [str(n) for n in range(FIRST + COUNT - 20, FIRST + COUNT)]  # the prefetch reaches them last
Record = Callable[[str, object], None]


@pytest.fixture
def record(record_property: Record) -> Record:
    def emit(name: str, value: object) -> None:
        print(f"[hung] {name} = {value}")
        record_property(name, value)

    return emit


@pytest.fixture(scope="module")
def hung_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("hung", {"pjsip.conf": generate_pjsip(COUNT, first=FIRST)})


def health(service: ServiceProcess) -> dict[str, Any]:
    body: dict[str, Any] = service.get("/health").json()
    return body


def timed(client: httpx.Client, path: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = client.get(path)
    assert response.status_code == 200, (path, response.text)
    return time.perf_counter() - started, response.json()


@dataclass
class Frozen:
    """What the service did while Asterisk was stopped."""

    noticed: float  # seconds from kill -STOP to /health saying AMI is down
    health: dict[str, Any]
    envelope: dict[str, Any]
    window: list[float]  # requests sent before it was noticed
    after: list[tuple[float, dict[str, Any]]]  # requests sent after


def freeze(lab: Lab, service: ServiceProcess, client: httpx.Client) -> Frozen:
    """kill -STOP the lab, ask for unfetched endpoints, wait for /health; always kill -CONT."""
    lab.pause()
    stopped = time.monotonic()
    try:
        window = [timed(client, f"/endpoints/{ext}")[0] for ext in LAST[:3]]
        down = wait_for(
            lambda: (h := health(service)) and not h["ami"]["connected"] and h,
            6,
            "/health to say AMI is not answering",
            interval=0.05,
        )
        noticed = time.monotonic() - stopped
        envelope = client.get("/endpoints").json()
        after = [timed(client, f"/endpoints/{ext}") for ext in LAST[3:]]
    finally:
        lab.resume()
    return Frozen(noticed, down, envelope, window, after)


def registers(lab: Lab, client: httpx.Client, ext: str) -> bool:
    """A phone registering as ``ext`` shows up in /endpoints/{ext} within 2 s."""
    port = free_port(socket.SOCK_DGRAM)
    registrar = ("127.0.0.1", lab.sip_port)
    register_blocking(ext, f"pw{ext}", registrar=registrar, local_port=port, expires=60)
    try:
        wait_for(
            lambda: client.get(f"/endpoints/{ext}").json()["details"]["contacts"],
            2,
            "a registration after the recovery",
        )
    finally:
        unregister_blocking(ext, f"pw{ext}", registrar=registrar, local_port=port)
    return True


def test_a_stopped_asterisk_is_noticed_within_5_s_and_cont_recovers(
    hung_lab: Lab, tmp_path: Path, record: Record
) -> None:
    service = ServiceProcess(hung_lab.service_env(), tmp_path / "service.log").start()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        with httpx.Client(base_url=service.base_url, headers=auth, timeout=10) as client:
            wait_for(lambda: health(service)["inventory"]["synced"], 30, "the first sync")
            assert health(service)["inventory"]["prefetch_seconds"] is None  # still prefetching
            frozen = freeze(hung_lab, service, client)
            resumed = time.monotonic()
            back = wait_for(lambda: (h := health(service))["ami"]["connected"] and h, 15, "AMI")
            reconnect = time.monotonic() - resumed
            wait_for(
                lambda: health(service)["inventory"]["prefetch_seconds"] is not None,
                60,
                "the detail prefetch after the re-login",
            )
            recovered = client.get("/endpoints").json()
            detail = client.get(f"/endpoints/{LAST[-1]}").json()
            assert registers(hung_lab, client, str(FIRST))
    finally:
        service.stop()

    record(
        "noticed after kill -STOP", f"{frozen.noticed:.2f} s ({frozen.health['ami']['last_error']})"
    )
    record("requests before it was noticed", [f"{t * 1000:.0f} ms" for t in frozen.window])
    record("worst request after it was noticed", f"{max(t for t, _ in frozen.after) * 1000:.0f} ms")
    record("AMI back after kill -CONT", f"{reconnect:.2f} s")

    assert frozen.noticed <= 5.0
    assert frozen.health["status"] == "degraded"
    assert "not answering" in (frozen.health["ami"]["last_error"] or "")
    assert frozen.envelope["ami_connected"] is False
    assert frozen.envelope["stale_since"] is not None  # the lists were taken: a last known state
    assert all(seconds < 2.5 for seconds in frozen.window), frozen.window  # no 2 s per request
    for seconds, body in frozen.after:
        assert seconds < 0.2, seconds  # at once, from what is known
        assert body["ami_connected"] is False
        assert body["in_asterisk"] is True
        assert body["details"]["endpoint"]["objectname"] == body["extension"]
    assert back["status"] == "ok"
    assert reconnect < 10.0
    assert recovered["ami_connected"] is True and recovered["stale_since"] is None
    assert len(recovered["endpoints"]) == COUNT
    assert detail["details"]["endpoint"]["callerid"] == f'"User {LAST[-1]}" <{LAST[-1]}>'
    assert "Traceback" not in service.log()
