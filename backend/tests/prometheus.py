"""Debian's Prometheus and promtool for the tests: the shipped files, rewritten only where a test
must (the target's port, the credentials file, a short scrape interval), and a Prometheus server
on a private loopback port with its own data directory.

Without the binaries the tests are skipped with the reason (``apt-get install prometheus``), and
fail instead under CI=true, like the Asterisk lab.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from ispbx_lab.lab import free_port

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
SCRAPE_CONFIG = PROMETHEUS_DIR / "ispbx.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "tests" / "alerts_test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "ispbx.json"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not installed (apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *map(str, args)], check=False, capture_output=True, text=True, timeout=60
    )


def rewritten_config(directory: Path, target: str, token: str, interval: str = "1s") -> Path:
    """The shipped ispbx.yml with only the target, the credentials file and the intervals
    changed, next to a copy of alerts.yml (rule_files is relative)."""
    config: dict[str, Any] = yaml.safe_load(SCRAPE_CONFIG.read_text())
    credentials = directory / "ispbx-metrics-token"
    credentials.write_text(token + "\n")
    credentials.chmod(0o600)
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    (job,) = config["scrape_configs"]
    job["authorization"]["credentials_file"] = str(credentials)
    job["static_configs"] = [{"targets": [target]}]
    shutil.copy(ALERTS, directory / "alerts.yml")
    path = directory / "ispbx.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class PrometheusServer:
    """``prometheus`` on 127.0.0.1 and a free port, data in ``directory``; stopped by its pid."""

    def __init__(self, config: Path, directory: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "prometheus.log"
        self._args = [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log()}")
            try:
                with _OPENER.open(f"{self.base}/-/ready", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready within {timeout} s: {self.log()}")

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with _OPENER.open(url, timeout=5) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None
