"""Foundation acceptance: real AMI login and lists, a real phone, AMI down/up in /health."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ispbx.ami import AmiClient
from ispbx_lab.lab import AMI_SECRET, AMI_USERNAME, Lab, LabUnavailable
from ispbx_lab.sipphone import SipPhone
from tests.integration.conftest import new_lab
from tests.support import ServiceProcess, wait_for

pytestmark = pytest.mark.integration


async def ami_list(lab: Lab, action: dict[str, str]) -> list[dict[str, str]]:
    client = AmiClient("127.0.0.1", lab.ami_port, AMI_USERNAME, AMI_SECRET)
    await client.connect()
    try:
        return await client.list_action(action)
    finally:
        await client.close()


async def test_ami_login_and_endpoint_list_on_the_lab(lab: Lab) -> None:
    items = await ami_list(lab, {"Action": "PJSIPShowEndpoints"})
    names = sorted(item["ObjectName"] for item in items)
    assert names == ["101", "102", "103", "104"]
    assert all(item["Event"] == "EndpointList" for item in items)


async def test_registered_phone_shows_its_contact_over_ami(lab: Lab) -> None:
    async with SipPhone("103", "103pass", registrar=("127.0.0.1", lab.sip_port)) as phone:
        await phone.register(expires=60)
        contacts = await ami_list(lab, {"Action": "PJSIPShowContacts"})
        port = phone.local_address[1]
        assert any(c.get("Endpoint") == "103" and f":{port}" in c.get("Uri", "") for c in contacts)
        await phone.unregister()
    contacts = await ami_list(lab, {"Action": "PJSIPShowContacts"})
    assert not any(c.get("Endpoint") == "103" for c in contacts)


@pytest.fixture
def service_on_lab(lab: Lab, tmp_path: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess(lab.service_env(), tmp_path / "service.log").start()
    yield service
    service.stop()


def test_health_follows_asterisk_down_and_up(lab: Lab, service_on_lab: ServiceProcess) -> None:
    service = service_on_lab
    wait_for(lambda: service.get("/health").json()["ami"]["connected"], 10, "AMI connected")
    lab.stop()
    down = wait_for(
        lambda: (h := service.get("/health").json()) and not h["ami"]["connected"] and h,
        10,
        "/health to report AMI down",
    )
    assert down["status"] == "degraded"
    assert down["ami"]["last_error"]
    lab.start()
    up = wait_for(
        lambda: (h := service.get("/health").json()) and h["ami"]["connected"] and h,
        15,
        "/health to report AMI connected again",
    )
    assert up["ami"]["last_error"] is None
    assert "Traceback" not in service.log()


def test_wrong_secret_is_reported_in_health(lab: Lab, tmp_path: Path) -> None:
    env = {**lab.service_env(), "ISPBX_AMI_SECRET": "wrong-secret"}
    service = ServiceProcess(env, tmp_path / "service.log").start()
    try:
        health = wait_for(
            lambda: (h := service.get("/health").json())["ami"]["last_error"] and h,
            5,
            "the authentication failure in /health",
        )
        assert "authentication failed" in health["ami"]["last_error"]
        assert service.get("/").status_code == 200
    finally:
        service.stop()


def test_two_starts_of_one_lab_at_once_give_one_asterisk(rootfs: None) -> None:
    lab = new_lab("race")
    outcomes: list[str] = []

    def start() -> None:
        try:
            lab.start()
            outcomes.append("started")
        except LabUnavailable as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes) == sorted(["started", f"lab {lab.name!r} is already running"])
        assert lab.running_pid() is not None
    finally:
        lab.remove()
    assert lab.running_pid() is None
    assert str(lab.root) not in Path("/proc/mounts").read_text()  # mounts die with Asterisk
    assert not lab.home.exists()
    assert not list(lab.home.parent.glob(f"{lab.name}*"))  # no lock file left behind
