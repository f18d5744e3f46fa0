"""The inventory follows real phones: REGISTER → online within 2 s, un-REGISTER → offline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ispbx_lab.lab import Lab
from ispbx_lab.sipphone import USER_AGENT, SipPhone
from tests.support import ServiceProcess, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def service(lab: Lab, tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(lab.service_env(), tmp_path / "service.log").start()
    wait_for(lambda: process.get("/health").json()["inventory"]["synced"], 10, "the first sync")
    yield process
    process.stop()


def listed(service: ServiceProcess, extension: str) -> dict[str, Any]:
    body = service.get("/endpoints").json()
    return next(e for e in body["endpoints"] if e["extension"] == extension)


async def test_register_and_unregister_are_seen_within_two_seconds(
    lab: Lab, service: ServiceProcess
) -> None:
    assert listed(service, "101")["status"] == "offline"
    async with SipPhone("101", "101pass", registrar=("127.0.0.1", lab.sip_port)) as phone:
        await phone.register(expires=60)
        registered = time.monotonic()
        item = wait_for(
            lambda: (e := listed(service, "101"))["status"] == "online" and e, 2, "101 online"
        )
        assert time.monotonic() - registered < 2
        assert item["details"]["devicestate"] == "Not in use"
        port = phone.local_address[1]
        contacts = wait_for(
            lambda: service.get("/endpoints/101").json()["details"]["contacts"],
            2,
            "the contact of 101",
        )
        assert contacts[0]["uri"].endswith(f"@127.0.0.1:{port}")
        assert contacts[0]["useragent"] == USER_AGENT
        online_list = service.get("/endpoints", params={"status": "online"}).json()
        assert [e["extension"] for e in online_list["endpoints"]] == ["101"]

        await phone.unregister()
        unregistered = time.monotonic()
        wait_for(lambda: listed(service, "101")["status"] == "offline", 2, "101 offline")
        assert time.monotonic() - unregistered < 2
    assert service.get("/endpoints/101").json()["details"]["contacts"] == []


def test_search_matches_extension_and_caller_id(service: ServiceProcess) -> None:
    def search(q: str) -> list[str]:
        body = service.get("/endpoints", params={"q": q}).json()
        return [e["extension"] for e in body["endpoints"]]

    assert search("10") == ["101", "102", "103", "104"]
    assert search("jörg") == ["102"]
    assert search("front desk") == ["103"]
    assert search("nobody") == []


def test_unknown_extension_is_404_on_every_route(service: ServiceProcess) -> None:
    for path in ("/endpoints/999", "/endpoints/999/config"):
        response = service.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "Extension not found"}


def test_bad_status_filter_is_a_422_not_a_crash(service: ServiceProcess) -> None:
    response = service.get("/endpoints", params={"status": "busy"})
    assert response.status_code == 422
