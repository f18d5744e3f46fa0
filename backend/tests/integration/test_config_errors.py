"""Broken pjsip.conf edits: whatever Asterisk 22 rejects as a whole keeps the last good view (in
Asterisk and in the service, with the reason in /health); what it merely skips is skipped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ispbx.ami import AmiClient
from ispbx_lab.lab import AMI_SECRET, AMI_USERNAME, SAMPLE_PJSIP, Lab, free_port
from tests.integration.conftest import running_lab, running_service
from tests.support import ServiceProcess, wait_for

pytestmark = pytest.mark.integration
NEW = "\n[998](endpoint-basic)\naors = 101\n"

# (case, text appended after the sample, the line that makes Asterisk reject the whole file)
REJECTED = [
    ("unknown template", NEW + "[999](no-such-template)\ntype = endpoint\n", "[999]"),
    ("unclosed section", NEW + "[999\ntype = endpoint\n", "[999"),
    ("missing include", NEW + "#include does-not-exist.conf\n", "#include"),
]
SKIPPED = [
    ("line without equals sign", NEW + "this line has no equals sign\n"),
    ("missing tryinclude", NEW + "#tryinclude does-not-exist.conf\n"),
    ("section without a type", NEW + "[996]\ncontext = x\n"),
]


@pytest.fixture(scope="module")
def edit_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("edits")


@pytest.fixture(scope="module")
def service(edit_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    yield from running_service(edit_lab, tmp_path_factory)


def asterisk_endpoints(lab: Lab) -> list[str]:
    async def fetch() -> list[str]:
        client = AmiClient("127.0.0.1", lab.ami_port, AMI_USERNAME, AMI_SECRET)
        await client.connect()
        try:
            items = await client.list_action({"Action": "PJSIPShowEndpoints"})
        finally:
            await client.close()
        return sorted(i["ObjectName"] for i in items)

    return asyncio.run(fetch())


def edit(lab: Lab, text: str) -> None:
    time.sleep(1.05)  # Asterisk skips a reload when the file's mtime second did not change
    lab.write_pjsip({"pjsip.conf": text})
    lab.reload_pjsip()


def extensions(service: ServiceProcess) -> list[str]:
    return [e["extension"] for e in service.get("/endpoints").json()["endpoints"]]


@pytest.mark.parametrize(("case", "addition", "culprit"), REJECTED, ids=[c[0] for c in REJECTED])
def test_whole_file_rejection_keeps_the_last_good_view(
    edit_lab: Lab, service: ServiceProcess, case: str, addition: str, culprit: str
) -> None:
    sample = SAMPLE_PJSIP.read_text()
    edit(edit_lab, sample + addition)
    assert "998" not in asterisk_endpoints(edit_lab), "Asterisk itself kept the old config"
    health = wait_for(
        lambda: (h := service.get("/health").json())["config"]["error"] and h, 2, "config.error"
    )
    assert "pjsip.conf:" in health["config"]["error"]
    assert health["config"]["loaded"] is True  # the last good view is still in use
    body = service.get("/endpoints").json()
    assert body["config_error"] == health["config"]["error"]
    assert [e["extension"] for e in body["endpoints"]] == ["101", "102", "103", "104"]
    assert service.get("/endpoints/101/config").json()["config"]["context"] == "from-internal"

    edit(edit_lab, sample)
    wait_for(lambda: service.get("/health").json()["config"]["error"] is None, 2, "recovery")


@pytest.mark.parametrize(("case", "addition"), SKIPPED, ids=[c[0] for c in SKIPPED])
def test_skipped_lines_are_skipped_like_asterisk(
    edit_lab: Lab, service: ServiceProcess, case: str, addition: str
) -> None:
    sample = SAMPLE_PJSIP.read_text()
    edit(edit_lab, sample + addition)
    assert "998" in asterisk_endpoints(edit_lab)
    wait_for(lambda: "998" in extensions(service), 2, "998 in /endpoints")
    assert service.get("/health").json()["config"]["error"] is None
    assert "996" not in extensions(service)
    edit(edit_lab, sample)
    wait_for(lambda: "998" not in extensions(service), 2, "998 gone again")


def test_a_repeated_id_skips_the_type_not_the_file(edit_lab: Lab, service: ServiceProcess) -> None:
    """Asterisk keeps its previous endpoints (998 does not load) but reloads the other types; the
    reader keeps the file, marks every endpoint not loadable and names the repeat's line."""
    sample = SAMPLE_PJSIP.read_text()
    edit(edit_lab, sample + NEW + "[997](endpoint-basic)\n[997](endpoint-basic)\n")
    assert "998" not in asterisk_endpoints(edit_lab)
    config = wait_for(
        lambda: (c := service.get("/endpoints/998/config").json()).get("loadable") is False and c,
        3,
        "998 marked not loadable",
    )
    assert any("defined twice" in p["message"] for p in config["problems"])
    health = service.get("/health").json()["config"]
    assert health["error"] is None
    lines = sample.count("\n") + NEW.count("\n") + 2  # the second [997]
    assert any(f"pjsip.conf:{lines}: " in w and "997" in w for w in health["warnings"])
    row = next(r for r in service.get("/endpoints").json()["endpoints"] if r["extension"] == "998")
    assert (row["exists_in_config"], row["in_asterisk"]) == (True, False)  # the drift shows
    edit(edit_lab, sample)
    wait_for(lambda: "998" not in extensions(service), 3, "998 gone again")


def test_an_object_asterisk_refuses_is_marked_with_the_field_and_line(
    edit_lab: Lab, service: ServiceProcess
) -> None:
    sample = SAMPLE_PJSIP.read_text()
    edit(edit_lab, sample + NEW + "rtp_timeout = soon\n")
    assert "998" not in asterisk_endpoints(edit_lab)  # "Could not create an object"
    config = wait_for(
        lambda: (c := service.get("/endpoints/998/config").json()).get("loadable") is False and c,
        3,
        "998 marked not loadable",
    )
    (problem,) = [p for p in config["problems"] if p["refused"]]
    assert problem["field"] == "rtp_timeout"
    assert problem["location"].endswith(f"pjsip.conf:{sample.count(chr(10)) + 2}")
    ok = service.get("/endpoints/101/config").json()
    assert ok["loadable"] is True and ok["problems"] == []
    edit(edit_lab, sample)
    wait_for(lambda: "998" not in extensions(service), 3, "998 gone again")


def test_never_parsed_config_gives_500_with_the_reason_in_health(tmp_path: Path) -> None:
    conf = tmp_path / "pjsip.conf"
    conf.write_text("[101](missing-template)\ntype = endpoint\n")
    env = {"ISPBX_PJSIP_CONF": str(conf), "ISPBX_AMI_PORT": str(free_port())}
    service = ServiceProcess(env, tmp_path / "service.log").start()
    try:
        response = service.get("/endpoints/101/config")
        assert response.status_code == 500
        assert response.json() == {"detail": "Error reading PJSIP configuration"}
        health = service.get("/health").json()
        assert health["config"]["loaded"] is False
        assert f"{conf}:1" in health["config"]["error"]
        body = service.get("/endpoints").json()
        assert body["config_error"] == health["config"]["error"]
        assert body["endpoints"] == []
        assert f"{conf}:1" in service.log()
        assert "Traceback" not in service.log()
    finally:
        service.stop()


def test_unreadable_config_gives_500(tmp_path: Path) -> None:
    conf = tmp_path / "missing" / "pjsip.conf"
    env = {"ISPBX_PJSIP_CONF": str(conf), "ISPBX_AMI_PORT": str(free_port())}
    service = ServiceProcess(env, tmp_path / "service.log").start()
    try:
        response = service.get("/endpoints/101/config")
        assert response.status_code == 500
        assert response.json() == {"detail": "Error reading PJSIP configuration"}
        assert str(conf) in service.get("/health").json()["config"]["error"]
    finally:
        service.stop()
