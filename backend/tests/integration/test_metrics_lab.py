"""/metrics against the real Asterisk: what a registration, a qualify and a trunk look like.

The lab runs the sample pjsip.conf with qualify on 104's AOR and a trunk (an endpoint with an
outbound_auth) whose static contact never answers. Asterisk 22 reports a registration as
ContactStatus NonQualified, then Reachable with the qualify's round trip, and nothing more while
the status stays the same (see ispbx.metrics.activity).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from ispbx.settings import SAMPLE_PJSIP_CONF
from ispbx_lab.lab import Lab
from ispbx_lab.sipphone import SipPhone
from tests.integration.conftest import running_lab, running_service
from tests.support import ServiceProcess
from tests.unit.metrics.rig import Samples, named, parse, value

pytestmark = pytest.mark.integration
TRUNK = """
[trunk-auth]
type = auth
auth_type = userpass
username = trunkuser
password = trunk-pass-5512

[trunk]
type = endpoint
transport = transport-udp
context = from-internal
disallow = all
allow = ulaw
outbound_auth = trunk-auth
aors = trunk

[trunk]
type = aor
contact = sip:trunkuser@127.0.0.1:5999
qualify_frequency = 2
qualify_timeout = 0.5
"""
PJSIP_CONF = (
    SAMPLE_PJSIP_CONF.read_text().replace(
        "[104](aor-single)", "[104](aor-single)\nqualify_frequency = 1"
    )
    + TRUNK
)


@pytest.fixture(scope="module")
def metrics_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("metrics", {"pjsip.conf": PJSIP_CONF})


@pytest.fixture(scope="module")
def service(metrics_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    yield from running_service(metrics_lab, tmp_path_factory, prefetched=True)


def scrape(service: ServiceProcess) -> Samples:
    response = service.get("/metrics")
    assert response.status_code == 200
    return parse(response.text)


async def until(
    service: ServiceProcess, check: Callable[[Samples], bool], seconds: float
) -> Samples:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        samples = await asyncio.to_thread(scrape, service)
        if check(samples):
            return samples
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {seconds} s")
        await asyncio.sleep(0.2)


def test_a_trunk_is_recognised_by_its_outbound_auth(service: ServiceProcess) -> None:
    samples = scrape(service)
    assert [labels["endpoint"] for labels in named(samples, "ispbx_endpoint_trunk")] == ["trunk"]
    assert value(samples, "ispbx_endpoint_up", endpoint="trunk") == 0  # its contact never answers
    assert value(samples, "ispbx_config_drift_endpoints", drift="not_loaded") == 0
    assert value(samples, "ispbx_config_loaded") == 1


async def test_a_qualified_registration_is_counted_and_its_round_trip_observed(
    metrics_lab: Lab, service: ServiceProcess
) -> None:
    # The trunk's first qualify fails about 2 s after Asterisk starts: let that be counted first.
    await until(service, lambda s: value(s, "ispbx_contacts", status="Unreachable") == 1, 15)
    before = scrape(service)
    registered = value(before, "ispbx_registration_events_total", kind="registered") or 0
    observed = value(before, "ispbx_contact_rtt_seconds_count") or 0
    async with SipPhone("104", "104pass", registrar=("127.0.0.1", metrics_lab.sip_port)) as phone:
        await phone.register(expires=60)
        samples = await until(
            service,
            lambda s: value(s, "ispbx_endpoint_rtt_seconds", endpoint="104") is not None,
            10,
        )
        assert value(samples, "ispbx_endpoint_up", endpoint="104") == 1
        assert (
            value(samples, "ispbx_registration_events_total", kind="registered") == registered + 1
        )
        reachable = value(samples, "ispbx_registration_events_total", kind="reachable")
        assert (
            reachable
            == (value(before, "ispbx_registration_events_total", kind="reachable") or 0) + 1
        )
        assert value(samples, "ispbx_contact_rtt_seconds_count") == observed + 1
        rtt = value(samples, "ispbx_endpoint_rtt_seconds", endpoint="104")
        assert rtt is not None and 0 < rtt < 1
        assert (value(samples, "ispbx_contacts", status="Reachable") or 0) >= 1
        await phone.unregister()
        samples = await until(
            service, lambda s: value(s, "ispbx_endpoint_up", endpoint="104") == 0, 10
        )
    assert (value(samples, "ispbx_registration_events_total", kind="unregistered") or 0) >= 1
    assert (value(samples, "ispbx_endpoint_state_changes_total", to="offline") or 0) >= 1
