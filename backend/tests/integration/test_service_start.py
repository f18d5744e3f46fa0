"""`make run` / `python src/main.py` without any Asterisk: answers at once, no traceback."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from ispbx_lab.lab import free_port
from tests.support import BACKEND, ServiceProcess, wait_for

REPO = BACKEND.parent


def test_service_starts_without_asterisk_and_says_ami_is_down(tmp_path: Path) -> None:
    env = {"ISPBX_AMI_PORT": str(free_port()), "ISPBX_AMI_SECRET": "x"}
    service = ServiceProcess(env, tmp_path / "service.log")
    started = time.monotonic()
    service.start(timeout=20)
    try:
        assert time.monotonic() - started < 20
        assert service.get("/").json()["message"] == "ISPBX Manager API"
        health = service.get("/health").json()
        assert health["ami"]["connected"] is False
        assert health["status"] == "degraded"
        time.sleep(2)  # several reconnect attempts
        log = service.log()
        assert "Traceback" not in log
        attempts = len(re.findall(r"(?i)retry|reconnect", log))
        assert attempts < 20, log
    finally:
        service.stop()
    assert "Traceback" not in service.log()  # nor at a Ctrl-C shutdown
    assert "Finished server process" in service.log()


def test_docs_page_loads_swagger_from_the_service_not_a_cdn(tmp_path: Path) -> None:
    service = ServiceProcess({"ISPBX_AMI_PORT": str(free_port())}, tmp_path / "s.log").start()
    try:
        page = service.get("/docs").text
        assert "cdn." not in page and "https://" not in page.split("<body>")[-1]
        scripts = re.findall(r'src="([^"]+\.js)"', page)
        assert scripts
        for script in scripts:
            assert service.get(script).status_code == 200
        assert service.get("/openapi.json").json()["info"]["title"] == "ISPBX Manager API"
    finally:
        service.stop()


@pytest.mark.parametrize("port", ["abc", "70000"])
def test_make_run_exits_non_zero_naming_a_bad_ami_port(port: str) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "run"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "ISPBX_AMI_PORT": port},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode != 0
    assert f"ISPBX_AMI_PORT: not a valid port: '{port}'" in result.stderr


def test_sample_pjsip_conf_is_used_and_logged_when_none_is_configured(tmp_path: Path) -> None:
    if Path("/etc/asterisk/pjsip.conf").exists():
        pytest.skip("this machine has /etc/asterisk/pjsip.conf")
    service = ServiceProcess({"ISPBX_AMI_PORT": str(free_port())}, tmp_path / "s.log").start()
    try:
        wait_for(lambda: "bundled sample" in service.log(), 5, "the sample pjsip.conf notice")
        assert service.get("/health").json()["config"]["path"].endswith("pjsip.sample.conf")
    finally:
        service.stop()
