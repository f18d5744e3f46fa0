"""Each metric family's values after a known sequence of events, against the fake AMI server.

The whole app runs (lifespan, wiring, the /metrics route); every body is parsed with
prometheus_client's own parser, so the format is checked on every scrape too.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ispbx.history import AuditResult
from ispbx.manage.service import Attempt
from ispbx.metrics.writes import WriteCounts
from tests.unit.ami.fake_ami import FakeAmi
from tests.unit.metrics.rig import (
    ADMIN,
    FakeAsterisk,
    Samples,
    Service,
    named,
    pjsip_conf,
    running,
    value,
)

IN_FILE = ["101", "102", "104"]
WARNING = "#bogus directive\n"


@pytest.fixture
async def asterisk() -> AsyncIterator[FakeAsterisk]:
    fake = await FakeAmi().start()
    asterisk = FakeAsterisk(fake)
    for name in ("101", "102", "103"):
        asterisk.add(name)
    asterisk.add("trunk", outbound="trunk-auth")
    try:
        yield asterisk
    finally:
        await fake.stop()


@pytest.fixture
async def service(tmp_path: Path, asterisk: FakeAsterisk) -> AsyncIterator[Service]:
    async for running_service in running(tmp_path, asterisk, pjsip_conf(IN_FILE, WARNING)):
        yield running_service


def prefetched(count: int) -> Callable[[Samples], bool]:
    return lambda s: value(s, "ispbx_ami_actions_total", action="PJSIPShowEndpoint") == count


def endpoints_with(samples: Samples, name: str) -> list[str]:
    return sorted(labels["endpoint"] for labels in named(samples, name))


# -- AMI -----------------------------------------------------------------------------------------


async def test_ami_counters_live_on_the_session_and_survive_a_reconnect(service: Service) -> None:
    s = await service.until(
        lambda s: value(s, "ispbx_ami_actions_total", action="PJSIPShowEndpoint") == 4
    )
    assert value(s, "ispbx_ami_up") == 1
    assert value(s, "ispbx_ami_reconnects_total") == 0
    assert value(s, "ispbx_ami_actions_total", action="Login") == 1
    assert value(s, "ispbx_ami_actions_total", action="PJSIPShowEndpoints") == 1
    assert value(s, "ispbx_ami_events_total") == 1  # the FullyBooted after the login

    service.asterisk.fake.drop_all()
    s = await service.until(
        lambda s: (
            value(s, "ispbx_ami_reconnects_total") == 1
            and value(s, "ispbx_ami_actions_total", action="PJSIPShowEndpoint") == 8
        )
    )
    assert value(s, "ispbx_ami_up") == 1
    assert value(s, "ispbx_ami_actions_total", action="Login") == 2
    assert value(s, "ispbx_ami_actions_total", action="PJSIPShowEndpoints") == 2
    assert value(s, "ispbx_ami_events_total") == 2


async def test_while_ami_is_down_live_state_is_not_exported_as_current(service: Service) -> None:
    await service.until(prefetched(4))
    fake = service.asterisk.fake
    await fake.stop()
    s = await service.until(lambda s: value(s, "ispbx_ami_up") == 0)
    changed = value(s, "ispbx_ami_last_change_timestamp_seconds")
    assert changed is not None and abs(changed - time.time()) < 5
    for family in ("ispbx_endpoints", "ispbx_endpoint_up", "ispbx_contacts"):
        assert named(s, family) == [], family
    assert named(s, "ispbx_config_drift_endpoints") == []
    assert value(s, "ispbx_config_loaded") == 1  # the file side is still known

    await fake.start()  # the same port again
    s = await service.until(
        lambda s: value(s, "ispbx_ami_up") == 1 and bool(named(s, "ispbx_endpoint_up"))
    )
    assert value(s, "ispbx_ami_reconnects_total") == 1


# -- endpoints -----------------------------------------------------------------------------------


async def test_endpoint_series_follow_device_states(service: Service) -> None:
    s = await service.until(prefetched(4))
    assert value(s, "ispbx_endpoints", status="online") == 0
    assert value(s, "ispbx_endpoints", status="offline") == 4
    assert endpoints_with(s, "ispbx_endpoint_up") == ["101", "102", "103", "trunk"]
    assert value(s, "ispbx_endpoint_up", endpoint="101") == 0
    assert value(s, "ispbx_endpoint_device_state", endpoint="101", state="Unavailable") == 1

    await service.asterisk.register("101", 5070)
    s = await service.until(lambda s: value(s, "ispbx_endpoint_up", endpoint="101") == 1)
    assert value(s, "ispbx_endpoints", status="online") == 1
    assert value(s, "ispbx_endpoints", status="offline") == 3
    states = [
        labels for labels in named(s, "ispbx_endpoint_device_state") if labels["endpoint"] == "101"
    ]
    assert states == [{"pbx": "default", "endpoint": "101", "state": "Not in use"}]

    await service.asterisk.device_state("101", "In use")
    s = await service.until(
        lambda s: value(s, "ispbx_endpoint_device_state", endpoint="101", state="In use") == 1
    )
    assert value(s, "ispbx_endpoint_up", endpoint="101") == 1


async def test_a_deleted_endpoint_leaves_no_series(service: Service) -> None:
    await service.asterisk.register("103", 5071, rtt_usec=2000)
    s = await service.until(
        lambda s: value(s, "ispbx_endpoint_rtt_seconds", endpoint="103") == 0.002
    )
    assert "103" in endpoints_with(s, "ispbx_endpoint_device_state")

    service.asterisk.remove("103")
    await service.asterisk.reload()
    s = await service.until(lambda s: "103" not in endpoints_with(s, "ispbx_endpoint_up"))
    for family in (
        "ispbx_endpoint_device_state",
        "ispbx_endpoint_rtt_seconds",
        "ispbx_endpoint_trunk",
    ):
        assert "103" not in endpoints_with(s, family), family
    assert value(s, "ispbx_endpoints", status="offline") == 3


async def test_only_trunks_have_a_trunk_series(service: Service) -> None:
    s = await service.until(prefetched(4))
    assert endpoints_with(s, "ispbx_endpoint_trunk") == ["trunk"]
    assert value(s, "ispbx_endpoint_trunk", endpoint="trunk") == 1


# -- contacts and round trips -----------------------------------------------------------------


async def test_contacts_by_status_and_the_rtt_histogram(service: Service) -> None:
    await service.until(prefetched(4))
    asterisk = service.asterisk
    await asterisk.register("101", 5070)  # not qualified
    uri = await asterisk.register("102", 5072)
    await asterisk.qualify("102", uri, 1500)
    s = await service.until(
        lambda s: (
            value(s, "ispbx_contacts", status="NonQualified") == 1
            and value(s, "ispbx_contacts", status="Reachable") == 1
        )
    )
    assert value(s, "ispbx_contact_rtt_seconds_count") == 1
    assert value(s, "ispbx_contact_rtt_seconds_sum") == pytest.approx(0.0015)
    assert value(s, "ispbx_contact_rtt_seconds_bucket", le="0.001") == 0
    assert value(s, "ispbx_contact_rtt_seconds_bucket", le="0.0025") == 1
    assert value(s, "ispbx_contact_rtt_seconds_bucket", le="+Inf") == 1
    assert value(s, "ispbx_endpoint_rtt_seconds", endpoint="102") == 0.0015
    assert endpoints_with(s, "ispbx_endpoint_rtt_seconds") == ["102"]  # 101 is not qualified

    await asterisk.qualify("102", uri, 30000)
    s = await service.until(lambda s: value(s, "ispbx_contact_rtt_seconds_count") == 2)
    assert value(s, "ispbx_contact_rtt_seconds_sum") == pytest.approx(0.0315)
    assert value(s, "ispbx_contact_rtt_seconds_bucket", le="0.025") == 1
    assert value(s, "ispbx_contact_rtt_seconds_bucket", le="0.05") == 2
    s = await service.until(
        lambda s: value(s, "ispbx_endpoint_rtt_seconds", endpoint="102") == 0.03
    )

    await asterisk.qualify("102", uri, None)  # Unreachable: no round trip
    s = await service.until(lambda s: value(s, "ispbx_contacts", status="Unreachable") == 1)
    assert value(s, "ispbx_contacts", status="Reachable") is None
    assert value(s, "ispbx_contact_rtt_seconds_count") == 2
    assert endpoints_with(s, "ispbx_endpoint_rtt_seconds") == []


# -- counters from the event stream ---------------------------------------------------------


async def test_registration_events_are_counted_by_kind(service: Service) -> None:
    await service.until(prefetched(4))
    asterisk = service.asterisk
    uri = await asterisk.register("101", 5070)
    await asterisk.qualify("101", uri, 800)
    await asterisk.qualify("101", uri, None)
    await asterisk.unregister("101", uri)
    uri = await asterisk.register("101", 5070)
    await asterisk.fake.send_event(  # a word Asterisk may add one day, about a known contact
        {"Event": "ContactStatus", "URI": uri, "ContactStatus": "Sideways", "EndpointName": "101"}
    )
    s = await service.until(
        lambda s: value(s, "ispbx_registration_events_total", kind="updated") == 1
    )
    kinds = {
        labels["kind"]: value(s, "ispbx_registration_events_total", kind=labels["kind"])
        for labels in named(s, "ispbx_registration_events_total")
    }
    assert kinds == {
        "registered": 2,  # 101, and 101 again after its un-registration
        "unregistered": 1,
        "reachable": 1,
        "unreachable": 1,
        "updated": 1,
    }


async def test_state_changes_count_online_offline_transitions_only(service: Service) -> None:
    await service.until(prefetched(4))
    asterisk = service.asterisk
    uri = await asterisk.register("101", 5070)
    s = await service.until(
        lambda s: value(s, "ispbx_endpoint_state_changes_total", to="online") == 1
    )
    await asterisk.device_state("101", "In use")  # a call: still online
    await asterisk.unregister("101", uri)
    s = await service.until(
        lambda s: value(s, "ispbx_endpoint_state_changes_total", to="offline") == 1
    )
    assert value(s, "ispbx_endpoint_state_changes_total", to="online") == 1

    # A resync that finds nothing new counts nothing; one that finds a change made while the
    # connection was down counts it.
    fake = asterisk.fake
    await fake.stop()
    await service.until(lambda s: value(s, "ispbx_ami_up") == 0)
    asterisk.states["102"] = "Not in use"
    await fake.start()
    s = await service.until(lambda s: value(s, "ispbx_endpoint_up", endpoint="102") == 1)
    assert value(s, "ispbx_endpoint_state_changes_total", to="online") == 2
    assert value(s, "ispbx_endpoint_state_changes_total", to="offline") == 1


# -- inventory, config, streams, HTTP -------------------------------------------------------


async def test_sync_and_prefetch_durations(service: Service) -> None:
    s = await service.until(
        lambda s: value(s, "ispbx_inventory_prefetch_duration_seconds") is not None
    )
    assert value(s, "ispbx_inventory_synced") == 1
    sync = value(s, "ispbx_inventory_sync_duration_seconds")
    assert sync is not None and 0 < sync < 5
    assert sync == service.pbx.inventory.sync_seconds


async def test_config_loaded_warnings_and_drift(service: Service) -> None:
    s = await service.until(prefetched(4))
    assert value(s, "ispbx_config_loaded") == 1
    assert value(s, "ispbx_config_warnings") == 1
    assert value(s, "ispbx_config_endpoints") == 3
    assert value(s, "ispbx_config_drift_endpoints", drift="not_loaded") == 1  # 104
    assert value(s, "ispbx_config_drift_endpoints", drift="not_in_file") == 2  # 103, trunk

    good = service.conf.read_text()
    service.conf.write_text(good + "[105](no-such-template)\ntype = endpoint\n")
    s = await service.until(lambda s: value(s, "ispbx_config_loaded") == 0)
    assert value(s, "ispbx_config_endpoints") == 3  # the last good parse is still served

    service.conf.write_text(pjsip_conf(IN_FILE))
    s = await service.until(lambda s: value(s, "ispbx_config_loaded") == 1)
    assert value(s, "ispbx_config_warnings") == 0


async def test_sse_subscribers_are_the_open_event_streams(service: Service) -> None:
    s = await service.scrape()
    assert value(s, "ispbx_sse_subscribers") == 0
    _wake, unsubscribe = service.pbx.publisher.subscribe()
    assert value(await service.scrape(), "ispbx_sse_subscribers") == 1
    unsubscribe()
    assert value(await service.scrape(), "ispbx_sse_subscribers") == 0


def http(samples: Samples, name: str, route: str, method: str, status: str) -> float | None:
    labels = frozenset({"route": route, "method": method, "status": status}.items())
    return samples.get((name, labels))


async def test_http_requests_are_counted_by_route_template_never_by_raw_path(
    service: Service,
) -> None:
    await service.until(prefetched(4))
    auth = {"Authorization": f"Bearer {ADMIN}"}
    client = service.client
    assert (await client.get("/endpoints/101", headers=auth)).status_code == 200
    assert (await client.get("/endpoints/102", headers=auth)).status_code == 200
    assert (await client.get("/endpoints/999", headers=auth)).status_code == 404
    assert (await client.get("/no/such/path")).status_code == 404
    assert (await client.request("BREW", "/")).status_code == 405
    s = await service.scrape()
    total = "ispbx_http_requests_total"
    assert http(s, total, "/endpoints/{extension}", "GET", "200") == 2
    assert http(s, total, "/endpoints/{extension}", "GET", "404") == 1
    assert http(s, total, "unmatched", "GET", "404") == 1
    assert http(s, total, "/", "other", "405") == 1
    count = "ispbx_http_request_duration_seconds_count"
    assert http(s, count, "/endpoints/{extension}", "GET", "200") == 2
    routes = {labels["route"] for labels in named(s, total)}
    assert not any("101" in route or "no/such" in route for route in routes), routes
    s = await service.scrape()
    assert http(s, total, "/metrics", "GET", "200") is not None  # scrapes count too


async def test_build_info_names_the_version(service: Service) -> None:
    from ispbx import __version__

    s = await service.scrape()
    assert s[("ispbx_build_info", frozenset({"version": __version__}.items()))] == 1


async def test_every_series_about_a_pbx_carries_its_id(service: Service) -> None:
    await service.asterisk.register("101", 5070, rtt_usec=1000)
    s = await service.until(
        lambda s: value(s, "ispbx_endpoint_rtt_seconds", endpoint="101") is not None
    )
    service_wide = ("ispbx_http_", "ispbx_build_info")
    for name, labels in s:
        if not name.startswith(service_wide):
            assert dict(labels).get("pbx") == "default", name


async def test_flapping_endpoints_come_from_the_history(
    tmp_path: Path, asterisk: FakeAsterisk
) -> None:
    conf = pjsip_conf(IN_FILE)
    async for service in running(tmp_path, asterisk, conf, ISPBX_FLAP_CHANGES="2"):
        s = await service.until(prefetched(4))
        assert value(s, "ispbx_flapping_endpoints") == 0
        assert named(s, "ispbx_endpoint_flapping") == []
        uri = await asterisk.register("101", 5070)
        await service.recorded("101", "registered")
        await asterisk.unregister("101", uri)
        s = await service.until(lambda s: value(s, "ispbx_flapping_endpoints") == 1, limit=10)
        assert named(s, "ispbx_endpoint_flapping") == [{"pbx": "default", "endpoint": "101"}]
        assert value(s, "ispbx_endpoint_flapping", endpoint="101") == 1


# -- management writes ---------------------------------------------------------------------------


async def test_writes_are_counted_by_operation_and_result_and_a_rollback_too(
    service: Service,
) -> None:
    s = await service.scrape()
    assert value(s, "ispbx_config_writes_total", operation="create", result="applied") == 0
    assert value(s, "ispbx_config_rollbacks_total") == 0
    auth = {"Authorization": f"Bearer {ADMIN}"}
    body = {"extension": "105", "password": "a-long-enough-password-1"}

    dry = await service.client.post(
        "/endpoints", json=body, params={"dry_run": "true"}, headers=auth
    )
    assert dry.status_code == 200, dry.text  # a dry run is no write
    taken = await service.client.post("/endpoints", json={**body, "extension": "101"}, headers=auth)
    assert taken.status_code == 409, taken.text  # 101 is in pjsip.conf already
    # The fake Asterisk answers Reload with an error: the files are put back.
    failed = await service.client.post("/endpoints", json=body, headers=auth)
    assert failed.status_code == 502, failed.text

    s = await service.scrape()
    assert value(s, "ispbx_config_writes_total", operation="create", result="rejected") == 1
    assert value(s, "ispbx_config_writes_total", operation="create", result="failed") == 1
    assert value(s, "ispbx_config_writes_total", operation="create", result="applied") == 0
    assert value(s, "ispbx_config_rollbacks_total") == 1
    assert value(s, "ispbx_config_apply_duration_seconds_count") == 0  # nothing applied


def test_applied_writes_are_timed_and_rolled_back_ones_counted() -> None:
    counts = WriteCounts()
    counts.attempted(Attempt("update", AuditResult.APPLIED, 0.7, rolled_back=False))
    counts.attempted(Attempt("import", AuditResult.APPLIED, 3.0, rolled_back=False))
    counts.attempted(Attempt("update", AuditResult.ROLLED_BACK, 0.9, rolled_back=True))
    assert counts.writes[("update", "applied")] == 1
    assert counts.writes[("update", "rolled_back")] == 1
    assert counts.rollbacks == 1
    assert counts.apply.count == 2
    assert dict(counts.apply.cumulative())["1.0"] == 1
    assert dict(counts.apply.cumulative())["5.0"] == 2
