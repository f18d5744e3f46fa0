"""Browser tests of the dashboard: Debian's chromium driven by Playwright, real backend and lab.

Playwright's sync API cannot run inside a running asyncio loop, so every e2e test is a plain
``def``; SIP phones are driven with the blocking helpers of ``ispbx_lab.sipphone``.
Without /usr/bin/chromium the tests are skipped (under CI=true they fail with the reason).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from ispbx_lab.lab import Lab, free_port
from ispbx_lab.sipphone import register_blocking, unregister_blocking
from tests.integration import conftest as integration
from tests.support import ServiceProcess, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

T = TypeVar("T")

rootfs = integration.rootfs  # the cached Asterisk chroot (skips or fails without it)


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests' screenshots go: docs/ under ``make screenshots``, else a temp dir.

    ``make test`` must leave the work tree as it found it, so the README's pictures are only
    rewritten on purpose (ISPBX_SCREENSHOT_DIR names the folder).
    """
    chosen = os.environ.get("ISPBX_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def lab(rootfs: None) -> Iterator[Lab]:
    """A lab with the sample pjsip.conf (101-104), apart from the integration tests' one."""
    instance = integration.new_lab("e2e")
    integration.start_or_skip(instance)
    yield instance
    instance.remove()


# Module scope, not session: while Playwright's sync API is active, its event loop counts as
# running in this thread, which would break the asyncio tests that run after the e2e ones.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"e2e: {reason}", pytrace=False)
        pytest.skip(f"e2e: {reason}")
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield instance
    instance.close()


@dataclass
class Console:
    """Console messages and page errors of one page; CSP violations fail the test."""

    messages: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        self.messages.append(f"{message.type}: {message.text}")

    def on_error(self, error: Exception) -> None:
        self.messages.append(f"pageerror: {error}")

    def problems(self) -> list[str]:
        return [
            m for m in self.messages if "Content Security Policy" in m or m.startswith("pageerror")
        ]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    instance = context.new_page()
    instance.on("console", console.on_console)
    instance.on("pageerror", console.on_error)
    instance.set_default_timeout(10_000)
    yield instance
    context.close()
    assert not console.problems(), console.problems()


def start_service(lab: Lab, log_path: Path, port: int | None = None) -> ServiceProcess:
    """The real service wired to ``lab``; ``port`` reuses a port (a restart on the same address)."""
    process = ServiceProcess(lab.service_env(), log_path)
    if port is not None:
        process.port = port
        process.base_url = f"http://127.0.0.1:{port}"
        process.env["ISPBX_HTTP_PORT"] = str(port)
    process.start()
    wait_for(lambda: process.get("/health").json()["inventory"]["synced"], 10, "the first sync")
    return process


def crash(process: ServiceProcess) -> None:
    """Stop the service abruptly (SIGKILL), as a crash or a pulled plug would."""
    assert process.process is not None
    process.process.kill()
    process.process.wait(timeout=5)
    process.process = None


@pytest.fixture(scope="session")
def service(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The service on the shared lab, for tests that leave it as they found it."""
    process = start_service(lab, tmp_path_factory.mktemp("e2e") / "service.log")
    yield process
    process.stop()


def board_url(service: ServiceProcess, token: str, view: str = "") -> str:
    return f"{service.base_url}/ui/#token={token}" + (f"&{view}" if view else "")


def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking asyncio helper in a thread: Playwright's loop runs in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result()


@dataclass
class Phone:
    """A registration made with the blocking helpers (the socket is closed in between)."""

    lab: Lab
    user: str
    password: str
    local_port: int = 0

    def register(self, expires: int = 120) -> None:
        if not self.local_port:
            self.local_port = free_port(socket.SOCK_DGRAM)
        in_thread(
            register_blocking,
            self.user,
            self.password,
            expires=expires,
            registrar=("127.0.0.1", self.lab.sip_port),
            local_port=self.local_port,
        )

    def unregister(self) -> None:
        in_thread(
            unregister_blocking,
            self.user,
            self.password,
            registrar=("127.0.0.1", self.lab.sip_port),
            local_port=self.local_port,
        )
