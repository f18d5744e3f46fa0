"""A real Prometheus (Debian's package) scrapes the service on the lab with the shipped scrape
config, rewritten only to point at the test's port and credentials file: after a REGISTER of a lab
phone it has ``ispbx_endpoint_up{endpoint="104"} == 1``, and it loaded the shipped alert rules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ispbx_lab.lab import Lab
from ispbx_lab.sipphone import SipPhone
from tests.prometheus import PrometheusServer, rewritten_config, tool
from tests.support import TEST_TOKENS, ServiceProcess, wait_for

pytestmark = pytest.mark.integration
METRICS_TOKEN = "metrics-test-token-0001"  # test credential
PHONE = "104"
T = TypeVar("T")


@pytest.fixture(scope="module")
def service(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    tool("prometheus")  # skip (or fail under CI) before starting anything
    env = {**lab.service_env(), "ISPBX_API_TOKENS": f"{TEST_TOKENS},metrics:{METRICS_TOKEN}"}
    process = ServiceProcess(env, tmp_path_factory.mktemp("service") / "service.log").start()
    try:
        wait_for(lambda: process.get("/health").json()["inventory"]["synced"], 15, "first sync")
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def prometheus(
    service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    directory = tmp_path_factory.mktemp("prometheus")
    config = rewritten_config(directory, f"127.0.0.1:{service.port}", METRICS_TOKEN)
    server = PrometheusServer(config, directory).start()
    try:
        yield server
    finally:
        server.stop()


async def eventually(check: Callable[[], T], seconds: float, what: str) -> T:
    """Poll ``check`` in a thread (the phone keeps answering meanwhile) until it is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.25)


def values(server: PrometheusServer, expr: str) -> list[float]:
    return [float(sample["value"][1]) for sample in server.query(expr)]


async def test_prometheus_sees_a_registered_phone_come_online(
    lab: Lab, prometheus: PrometheusServer
) -> None:
    up = f'ispbx_endpoint_up{{job="ispbx", endpoint="{PHONE}"}}'
    assert await eventually(lambda: values(prometheus, up) == [0.0], 20, f"{PHONE} offline")
    async with SipPhone(PHONE, f"{PHONE}pass", registrar=("127.0.0.1", lab.sip_port)) as phone:
        await phone.register(expires=60)
        found = await eventually(lambda: prometheus.query(f"{up} == 1"), 15, f"{PHONE} up")
        labels: dict[str, Any] = found[0]["metric"]
        assert labels["pbx"] == "default"
        assert labels["instance"].startswith("127.0.0.1:")
        created = 'ispbx_registration_events_total{job="ispbx", kind="registered"} >= 1'
        await eventually(lambda: prometheus.query(created), 5, "a counted registration")
        await phone.unregister()
        await eventually(lambda: prometheus.query(f"{up} == 0"), 15, f"{PHONE} down again")


def test_the_scrape_is_authenticated_and_healthy(prometheus: PrometheusServer) -> None:
    def target() -> dict[str, Any] | None:
        targets = prometheus.api("targets")["activeTargets"]
        found = [t for t in targets if t["labels"]["job"] == "ispbx"]
        return found[0] if found and found[0]["health"] == "up" else None

    found = wait_for(target, 15, "a healthy ispbx target")
    assert found is not None
    assert found["lastError"] == ""
    assert values(prometheus, 'ispbx_ami_up{job="ispbx"}') == [1.0]


def test_prometheus_loaded_the_shipped_alert_rules(prometheus: PrometheusServer) -> None:
    groups = prometheus.api("rules")["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"IspbxAmiDown", "IspbxTrunkDown", "IspbxConfigRejected"} <= names
    assert all(rule["health"] != "err" for group in groups for rule in group["rules"])
    # nothing is wrong on the lab: no alert fires
    assert prometheus.api("alerts")["alerts"] == []


def test_the_credentials_file_is_the_only_place_of_the_token(tmp_path: Path) -> None:
    config = rewritten_config(tmp_path, "127.0.0.1:1", METRICS_TOKEN).read_text()
    assert METRICS_TOKEN not in config
    assert (tmp_path / "ispbx-metrics-token").stat().st_mode & 0o077 == 0
