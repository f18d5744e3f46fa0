"""A messy multi-file pjsip.conf loaded into the lab Asterisk: the service's view of it must agree
with Asterisk's own (PJSIPShowEndpoint), endpoint by endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ispbx.ami import AmiClient
from ispbx.pbx.readmodel import wire_name
from ispbx_lab.lab import AMI_SECRET, AMI_USERNAME, Lab
from tests.integration.conftest import running_lab, running_service
from tests.support import ServiceProcess

pytestmark = pytest.mark.integration
CONF_DIR = Path(__file__).parent / "pjsip_multi"
EXPECTED_ENDPOINTS = ["201", "202", "203", "204", "alice.smith", "trunk-out"]
COMPARED = ("context", "aors", "auth", "transport", "language")


def conf_files() -> dict[str, str]:
    return {str(p.relative_to(CONF_DIR)): p.read_text() for p in CONF_DIR.rglob("*.conf")}


@pytest.fixture(scope="module")
def multi_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("multi", conf_files())


@pytest.fixture(scope="module")
def service(multi_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    yield from running_service(multi_lab, tmp_path_factory)


async def asterisk_endpoint(lab: Lab, name: str) -> dict[str, str]:
    client = AmiClient("127.0.0.1", lab.ami_port, AMI_USERNAME, AMI_SECRET)
    await client.connect()
    try:
        items = await client.list_action({"Action": "PJSIPShowEndpoint", "Endpoint": name})
    finally:
        await client.close()
    return next(item for item in items if item.get("Event") == "EndpointDetail")


def test_endpoints_lists_exactly_asterisks_endpoints(service: ServiceProcess) -> None:
    body = service.get("/endpoints").json()
    names = [item["extension"] for item in body["endpoints"]]
    assert names == EXPECTED_ENDPOINTS  # natural order, no templates/auths/aors/ghosts
    assert all(item["in_asterisk"] and item["exists_in_config"] for item in body["endpoints"])


def _bool(value: str) -> bool:
    return value.strip().lower() in {"yes", "true", "1", "on", "y", "t"}


def _unquote(value: str) -> str:
    return value.replace('"', "").strip()


@pytest.mark.parametrize("name", EXPECTED_ENDPOINTS)
async def test_config_agrees_with_pjsipshowendpoint(
    service: ServiceProcess, multi_lab: Lab, name: str
) -> None:
    config = service.get(f"/endpoints/{name}/config").json()["config"]
    ami = await asterisk_endpoint(multi_lab, name)
    for option in COMPARED:
        wire = option[0].upper() + option[1:]
        assert config.get(option, "") == ami[wire], option
    codecs = [c for c in ami["Allow"].strip("()").split("|") if c]
    assert config["allow"].split(",") == codecs
    asterisk_callerid = ami["Callerid"].replace("<unknown>", "")
    assert _unquote(config.get("callerid", "")) == _unquote(asterisk_callerid)
    assert _bool(config.get("direct_media", "yes")) == _bool(ami["DirectMedia"])


@pytest.mark.parametrize("name", EXPECTED_ENDPOINTS)
async def test_shown_values_are_what_asterisk_shows(
    service: ServiceProcess, multi_lab: Lab, name: str
) -> None:
    shown = service.get(f"/endpoints/{name}/config").json()["shown"]
    ami = await asterisk_endpoint(multi_lab, name)
    differ = {
        option: (value, ami.get(wire_name(option)))
        for option, value in shown.items()
        if ami.get(wire_name(option)) != value
    }
    assert differ == {}


def test_skipped_line_is_reported_as_a_warning(service: ServiceProcess) -> None:
    warnings = service.get("/health").json()["config"]["warnings"]
    assert any("10-users.conf:10" in w for w in warnings), warnings


def test_endpoint_with_two_aors_lists_both(service: ServiceProcess) -> None:
    details = service.get("/endpoints/202").json()["details"]
    assert [a["objectname"] for a in details["aors"]] == ["202-desk", "202-soft"]
    assert details["aor"]["objectname"] == "202-desk"


def test_trunk_shows_its_outbound_auth_and_no_inbound_auth(service: ServiceProcess) -> None:
    details = service.get("/endpoints/trunk-out").json()["details"]
    assert details["outbound_auth"]["username"] == "trunkuser"
    assert details["auth"] is None and details["auths"] == []


def test_accumulating_options_join_in_order(service: ServiceProcess) -> None:
    config = service.get("/endpoints/204/config").json()["config"]
    assert config["set_var"] == "A=1,B=2"
    assert config["language"] == "pt_BR"


def test_non_ascii_caller_id_comes_through(service: ServiceProcess) -> None:
    endpoint = service.get("/endpoints/203").json()["details"]["endpoint"]
    assert endpoint["callerid"] == '"Jörg Müller" <203>'
