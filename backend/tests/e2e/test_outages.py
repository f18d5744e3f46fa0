"""The dashboard tells the truth when Asterisk or the server is down, and recovers by itself.

Uses a lab and a service of its own (stopping them would disturb the other tests); its pjsip.conf
adds an extension whose caller ID is hostile HTML, which must show as text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ispbx_lab.lab import SAMPLE_PJSIP, Lab
from tests.e2e.conftest import board_url, crash, start_service
from tests.integration.conftest import new_lab, start_or_skip
from tests.support import VIEWER_TOKEN, ServiceProcess

pytestmark = pytest.mark.e2e

HOSTILE = '"<img src=x onerror=window.pwned=1>" <105>'
PJSIP = (
    SAMPLE_PJSIP.read_text()
    + f"""
[105](endpoint-basic)
auth = 105
aors = 105
callerid = {HOSTILE}
[105](auth-userpass)
username = 105
password = 105pass
[105](aor-single)
"""
)


@pytest.fixture(scope="module")
def own_lab(rootfs: None) -> Iterator[Lab]:
    instance = new_lab("e2e-outages", {"pjsip.conf": PJSIP})
    start_or_skip(instance)
    yield instance
    instance.remove()


@pytest.fixture(scope="module")
def own_service(own_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    process = start_service(own_lab, tmp_path_factory.mktemp("outages") / "service.log")
    yield process
    process.stop()


def test_hostile_caller_id_is_shown_as_text(page: Page, own_service: ServiceProcess) -> None:
    page.goto(board_url(own_service, VIEWER_TOKEN, "q=105"))
    cell = page.locator('#rows tr[data-ext="105"] td').first
    expect(cell).to_have_text("<img src=x onerror=window.pwned=1>")
    assert page.locator("#rows img").count() == 0
    assert page.evaluate("window.pwned") is None


def test_asterisk_down_shows_the_ami_banner_until_it_is_back(
    page: Page, own_service: ServiceProcess, own_lab: Lab
) -> None:
    page.goto(board_url(own_service, VIEWER_TOKEN))
    expect(page.locator("#rows tr[data-ext]")).to_have_count(5)
    banner = page.locator("#ami-banner")
    expect(banner).to_be_hidden()
    own_lab.stop()
    try:
        expect(banner).to_be_visible()
        expect(banner).to_have_text(
            re.compile(r"Asterisk connection lost — states as of \d\d:\d\d:\d\d")
        )
        expect(banner).to_have_attribute("role", "alert")
        expect(page.locator("#ami-state")).to_have_text(
            re.compile(r"reconnecting since \d\d:\d\d:\d\d")
        )
        expect(page.locator("#table")).to_have_class(re.compile("stale"))
        # The last known rows stay on the board.
        expect(page.locator("#rows tr[data-ext]")).to_have_count(5)
    finally:
        own_lab.start()
    expect(banner).to_be_hidden(timeout=15_000)
    expect(page.locator("#ami-state")).to_have_text("connected")
    expect(page.locator("#table")).not_to_have_class(re.compile("stale"))


def test_server_down_shows_retrying_with_backoff_then_recovers(
    page: Page, own_service: ServiceProcess, own_lab: Lab, tmp_path: Path
) -> None:
    page.goto(board_url(own_service, VIEWER_TOKEN))
    expect(page.locator("#link-state")).to_have_text("live")
    unreachable = page.locator("#unreachable")
    crash(own_service)
    expect(unreachable).to_have_text(re.compile(r"Server unreachable — retrying in [45] s"))
    expect(unreachable).to_have_attribute("role", "alert")
    expect(page.locator("#link-state")).to_have_text("server unreachable")
    # The next failure doubles the wait (5 s -> 10 s).
    expect(unreachable).to_contain_text("retrying in 10 s", timeout=8000)
    # The board keeps the last known rows meanwhile.
    expect(page.locator("#rows tr[data-ext]")).to_have_count(5)

    started = time.monotonic()
    restarted = start_service(own_lab, tmp_path / "restarted.log", port=own_service.port)
    try:
        expect(unreachable).to_be_hidden(timeout=15_000)
        expect(page.locator("#link-state")).to_have_text("live")
        assert time.monotonic() - started < 15
        expect(page.locator("#rows tr[data-ext]")).to_have_count(5)
    finally:
        page.close()  # an open event stream would hold up the service's graceful shutdown
        restarted.stop()
