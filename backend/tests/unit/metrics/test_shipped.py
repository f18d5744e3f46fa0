"""The shipped Prometheus and Grafana files: promtool accepts them, every alert has a unit test,
and the dashboard and alerts use only metric names the service exports."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.prometheus import (
    ALERT_TESTS,
    ALERTS,
    DASHBOARD,
    SCRAPE_CONFIG,
    promtool,
    rewritten_config,
)
from tests.unit.ami.fake_ami import FakeAmi
from tests.unit.metrics.rig import ADMIN, FakeAsterisk, pjsip_conf, running, value

NAME = re.compile(r"\bispbx_[a-zA-Z0-9_]+")


def ok(result: Any) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


# -- promtool ------------------------------------------------------------------------------------


def test_promtool_accepts_the_alert_rules() -> None:
    ok(promtool("check", "rules", ALERTS))


def test_promtool_accepts_the_scrape_config_as_shipped() -> None:
    # The credentials file is the operator's (/etc/prometheus/ispbx-metrics-token): promtool's
    # full check wants it to exist, so the shipped file is checked for syntax here and in full
    # below, with only that path pointing at a file that exists.
    ok(promtool("check", "config", "--syntax-only", SCRAPE_CONFIG))


def test_promtool_accepts_the_scrape_config_with_its_rules(tmp_path: Path) -> None:
    ok(promtool("check", "config", rewritten_config(tmp_path, "127.0.0.1:8000", "t" * 16)))


def test_every_alert_passes_its_unit_test() -> None:
    ok(promtool("test", "rules", ALERT_TESTS))


def test_every_alert_has_a_unit_test() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert alerts == tested
    assert {
        "IspbxAmiDown",
        "IspbxTrunkDown",
        "IspbxEndpointFlapping",
        "IspbxEndpointsOffline",
        "IspbxConfigRejected",
    } <= alerts


def test_the_scrape_config_sends_a_bearer_token_to_a_loopback_target() -> None:
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "ispbx"  # the alerts' up{job="ispbx"}
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"].startswith("/etc/prometheus/")
    assert "credentials" not in job["authorization"]  # never a token in the file itself
    (target,) = job["static_configs"][0]["targets"]
    assert target.startswith("127.0.0.1:")
    assert config["rule_files"] == ["alerts.yml"]


# -- the names the service exports -----------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name of a /metrics body with every family populated."""

    async def collect() -> set[str]:
        fake = await FakeAmi().start()
        asterisk = FakeAsterisk(fake)
        asterisk.add("101")
        asterisk.add("trunk", outbound="trunk-auth")
        try:
            directory = tmp_path_factory.mktemp("exported")
            conf = pjsip_conf(["101"])
            async for service in running(directory, asterisk, conf, ISPBX_FLAP_CHANGES="2"):
                uri = await asterisk.register("101", 5070)
                await service.recorded("101", "registered")
                await asterisk.unregister("101", uri)  # a second change: 101 flaps
                await service.until(lambda s: value(s, "ispbx_flapping_endpoints") == 1, limit=10)
                uri = await asterisk.register("101", 5070, rtt_usec=1000)
                await asterisk.qualify("101", uri, 1000)
                await service.client.get(
                    "/endpoints/101", headers={"Authorization": f"Bearer {ADMIN}"}
                )
                samples = await service.until(
                    lambda s: (
                        value(s, "ispbx_endpoint_rtt_seconds", endpoint="101") is not None
                        and value(s, "ispbx_inventory_prefetch_duration_seconds") is not None
                        and value(s, "ispbx_endpoint_flapping", endpoint="101") == 1
                    ),
                    limit=10,
                )
                return {name for name, _labels in samples}
        finally:
            await fake.stop()
        raise AssertionError("the service did not start")

    return asyncio.run(collect())


def test_the_exported_names_cover_the_issue_list(exported: set[str]) -> None:
    assert {
        "ispbx_endpoints",
        "ispbx_endpoint_up",
        "ispbx_endpoint_device_state",
        "ispbx_contacts",
        "ispbx_endpoint_rtt_seconds",
        "ispbx_contact_rtt_seconds_bucket",
        "ispbx_registration_events_total",
        "ispbx_endpoint_state_changes_total",
        "ispbx_ami_up",
        "ispbx_ami_reconnects_total",
        "ispbx_ami_events_total",
        "ispbx_ami_actions_total",
        "ispbx_inventory_sync_duration_seconds",
        "ispbx_inventory_prefetch_duration_seconds",
        "ispbx_config_loaded",
        "ispbx_config_warnings",
        "ispbx_config_drift_endpoints",
        "ispbx_http_requests_total",
        "ispbx_http_request_duration_seconds_bucket",
        "ispbx_sse_subscribers",
        "ispbx_flapping_endpoints",
        "ispbx_endpoint_flapping",
        "ispbx_config_writes_total",
        "ispbx_config_rollbacks_total",
        "ispbx_config_apply_duration_seconds_bucket",
    } <= exported


def test_the_alerts_use_only_exported_names(exported: set[str]) -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert used, "no ispbx_ name found in the alerts"
    assert used <= exported, used - exported


# -- the Grafana dashboard --------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def expressions(board: dict[str, Any]) -> list[str]:
    found = [
        target["expr"]
        for panel in panels(board["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if isinstance(query, str) and variable.get("type") == "query":
            found.append(query)
    return found


def test_the_dashboard_uses_only_names_the_service_exports(exported: set[str]) -> None:
    used = {name for expr in expressions(dashboard()) for name in NAME.findall(expr)}
    assert len(used) >= 15
    assert used <= exported, used - exported


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    board = dashboard()
    kinds = {panel["type"] for panel in panels(board["panels"])}
    assert "heatmap" in kinds
    text = " ".join(expressions(board))
    for name in (
        "ispbx_endpoints",
        "ispbx_contact_rtt_seconds_bucket",
        "ispbx_registration_events_total",
        "ispbx_ami_up",
        "ispbx_config_loaded",
    ):
        assert name in text, name


def test_the_dashboard_is_a_loadable_grafana_dashboard() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    ids = [panel["id"] for panel in panels(board["panels"])]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in panels(board["panels"]):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression (Grafana's variables replaced by what they stand for)."""
    replacements = {"$__rate_interval": "5m", '=~"$pbx"': '=~".+"'}
    rules = []
    for number, query in enumerate(expressions(dashboard())):
        if query.startswith("label_values("):
            continue
        expr = query
        for variable, text in replacements.items():
            expr = expr.replace(variable, text)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    ok(promtool("check", "rules", path))
