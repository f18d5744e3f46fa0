"""A one-endpoint edit plus ``module reload res_pjsip.so`` on the lab Asterisk re-fetches that
endpoint's details, not every endpoint's (today's figure would be one PJSIPShowEndpoint each)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.amiproxy import AmiCountingProxy, LoopThread

from ispbx_lab.lab import Lab, generate_pjsip
from tests.integration.conftest import running_lab
from tests.support import ServiceProcess, wait_for

pytestmark = pytest.mark.integration
COUNT = 1000
CHANGED = 1500
MAX_ACTIONS = 20


@pytest.fixture(scope="module")
def refresh_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("refresh", {"pjsip.conf": generate_pjsip(COUNT)})


def callerid_of(service: ServiceProcess, extension: int) -> str | None:
    body = service.get(f"/endpoints/{extension}").json()
    value: str | None = body["details"]["endpoint"].get("callerid")
    return value


def test_one_changed_endpoint_is_fetched_again_after_a_reload(
    refresh_lab: Lab, tmp_path: Path
) -> None:
    loop = LoopThread()
    proxy = AmiCountingProxy(refresh_lab.ami_port)
    loop.run(proxy.start())
    env = {**refresh_lab.service_env(), "ISPBX_AMI_PORT": str(proxy.port)}
    service = ServiceProcess(env, tmp_path / "service.log").start()
    try:
        wait_for(
            lambda: service.get("/health").json()["inventory"]["prefetch_seconds"] is not None,
            60,
            "the detail prefetch",
        )
        assert proxy.counts()["PJSIPShowEndpoint"] == COUNT  # the login's full prefetch
        assert callerid_of(service, CHANGED) == f'"User {CHANGED}" <{CHANGED}>'
        before = proxy.counts()

        time.sleep(1.05)  # Asterisk skips a reload when the file's mtime second did not change
        refresh_lab.write_pjsip(
            {"pjsip.conf": generate_pjsip(COUNT, names={CHANGED: "Renamed Customer"})}
        )
        refresh_lab.reload_pjsip()
        wait_for(
            lambda: callerid_of(service, CHANGED) == f'"Renamed Customer" <{CHANGED}>',
            10,
            "the new caller ID",
        )
        time.sleep(0.5)  # anything else the reload set off is on the wire by now
        sent = proxy.counts() - before
        sent.pop("Ping", None)
        print(f"[refresh] AMI actions after a one-endpoint change + reload: {dict(sent)}")
        assert sent["PJSIPShowEndpoints"] == 1  # the lists are taken once again
        assert sent["PJSIPShowEndpoint"] == 1  # and only the changed endpoint's details
        assert sum(sent.values()) <= MAX_ACTIONS
        untouched = callerid_of(service, CHANGED + 1)
        assert untouched == f'"User {CHANGED + 1}" <{CHANGED + 1}>'
    finally:
        service.stop()
        loop.run(proxy.stop())
        loop.stop()
