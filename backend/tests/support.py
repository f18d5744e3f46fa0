"""Test helpers shared by the integration and e2e tests: the real service in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ispbx_lab.lab import free_port

BACKEND = Path(__file__).resolve().parents[1]
T = TypeVar("T")
ADMIN_TOKEN = "admin-test-token-0001"  # test credentials
VIEWER_TOKEN = "viewer-test-token-0001"
TEST_TOKENS = f"admin:{ADMIN_TOKEN},viewer:{VIEWER_TOKEN}"


class ServiceProcess:
    """``python src/main.py`` with the given ISPBX_* settings, on a free loopback port."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ISPBX_HTTP_HOST": "127.0.0.1",
            "ISPBX_HTTP_PORT": str(self.port),
            "ISPBX_API_TOKENS": TEST_TOKENS,
            "ISPBX_TOKEN_FILE": str(log_path.parent / "admin-token"),
            "ISPBX_DATABASE_URL": f"sqlite+aiosqlite:///{log_path.parent / 'ispbx.db'}",
            "ISPBX_STATE_DIR": str(log_path.parent / "state"),
            **env,
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "src/main.py"],
                cwd=BACKEND,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(lambda: self.get("/").status_code == 200, timeout, "the service to answer")
        except AssertionError:
            self.stop()  # a service that never answered must not outlive the test
            raise
        return self

    def get(self, path: str, token: str | None = ADMIN_TOKEN, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.get(self.base_url + path, timeout=5, headers=headers, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.HTTPError, OSError, KeyError, AssertionError) as exc:
            last_error = exc
        else:
            if result:
                return result
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what} (last error: {last_error})"
    )
