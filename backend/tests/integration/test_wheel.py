"""The product as a wheel: built from the checkout, installed into a fresh venv outside the repo,
started by its console entry point, it serves the dashboard and the docs from package data."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from ispbx_lab.lab import free_port
from tests.support import ADMIN_TOKEN, BACKEND, TEST_TOKENS, wait_for

pytestmark = pytest.mark.integration


def run(*command: str | Path, cwd: Path) -> None:
    subprocess.run([str(c) for c in command], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, BACKEND, cwd=dist)
    (found,) = dist.glob("ispbx_manager-*.whl")
    return found


def test_the_wheel_carries_the_dashboard_and_config_but_not_the_lab(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ispbx/ui/index.html" in names
    assert "ispbx/ui/app.js" in names
    assert "ispbx/config/pjsip_detail.ini" in names
    assert "ispbx/config/pjsip.sample.conf" in names
    assert not any(name.startswith("ispbx_lab/") for name in names)


def test_installed_wheel_serves_ui_and_docs_from_outside_the_repo(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "ISPBX_HTTP_PORT": str(port),
        "ISPBX_AMI_PORT": str(free_port()),  # nothing listens: the service starts anyway
        "ISPBX_API_TOKENS": TEST_TOKENS,
    }
    bad = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "ispbx"],
        cwd=tmp_path,
        env={**env, "ISPBX_AMI_PORT": "not-a-port"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "ISPBX_AMI_PORT" in bad.stderr
    log = (tmp_path / "service.log").open("wb")
    service = subprocess.Popen(
        [str(venv / "bin" / "ispbx")], cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/").status_code == 200, 30, "the installed service")
        ui = httpx.get(f"{base}/ui/")
        assert ui.status_code == 200
        assert "<html" in ui.text.lower()
        assert httpx.get(f"{base}/ui/app.js").status_code == 200
        assert httpx.get(f"{base}/docs").status_code == 200
        listed = httpx.get(f"{base}/endpoints", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert listed.status_code == 200  # the bundled sample pjsip.conf, from package data
        assert {row["extension"] for row in listed.json()["endpoints"]} >= {"101", "102"}
    finally:
        service.terminate()
        service.wait(timeout=10)
        log.close()
    assert "Traceback" not in (tmp_path / "service.log").read_text()
