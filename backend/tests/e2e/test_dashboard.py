"""The dashboard in a real Chromium against the real service and the shared lab Asterisk."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from ispbx_lab.lab import Lab
from ispbx_lab.sipphone import USER_AGENT
from tests.e2e.conftest import Phone, board_url
from tests.support import ADMIN_TOKEN, VIEWER_TOKEN, ServiceProcess

pytestmark = pytest.mark.e2e


def row(page: Page, extension: str) -> Locator:
    return page.locator(f'#rows tr[data-ext="{extension}"]')


def expect_extensions(page: Page, expected: list[str]) -> None:
    """The board shows exactly these rows, in this order (waits for the next render)."""
    expect(page.locator("#rows tr[data-ext] > th")).to_have_text(expected)


def test_board_lists_the_lab_extensions_with_their_states(
    page: Page, service: ServiceProcess
) -> None:
    page.goto(board_url(service, ADMIN_TOKEN))
    expect(page.locator("#rows tr[data-ext]")).to_have_count(4)
    expect_extensions(page, ["101", "102", "103", "104"])
    # The token left the address bar and lives in sessionStorage.
    assert "token" not in page.url
    assert page.evaluate("sessionStorage.getItem('ispbx.token')") == ADMIN_TOKEN
    expect(row(page, "102").locator("td").nth(0)).to_have_text("Jörg Müller")
    expect(row(page, "103").locator("td").nth(0)).to_have_text("Front Desk")
    for extension in ("101", "102", "103", "104"):
        expect(row(page, extension).locator(".badge")).to_have_text("offline")
        expect(row(page, extension).locator(".state")).to_have_text("unavailable")
        expect(row(page, extension).locator("td").nth(3)).to_have_text("0 / 1")
    expect(page.locator("#count-online")).to_have_text("0")
    expect(page.locator("#count-offline")).to_have_text("4")
    expect(page.locator("#count-call")).to_have_text("0")
    expect(page.locator("#ami-state")).to_have_text("connected")
    expect(page.locator("#link-state")).to_have_text("live")
    expect(page.locator("#last-update")).to_have_text(re.compile(r"\d\d:\d\d:\d\d"))
    expect(page.locator("#ami-banner")).to_be_hidden()


def test_register_turns_the_row_online_without_a_reload(
    page: Page, service: ServiceProcess, lab: Lab
) -> None:
    page.goto(board_url(service, ADMIN_TOKEN))
    expect(page.locator("#link-state")).to_have_text("live")
    expect(row(page, "101").locator(".badge")).to_have_text("offline")
    phone = Phone(lab, "101", "101pass")
    phone.register()
    try:
        registered = time.monotonic()
        expect(row(page, "101").locator(".badge")).to_have_text("online", timeout=2000)
        assert time.monotonic() - registered < 2
        expect(row(page, "101").locator(".state")).to_have_text("idle")
        expect(row(page, "101").locator(".addr")).to_have_text(f"127.0.0.1:{phone.local_port}")
        expect(row(page, "101").locator(".ua")).to_have_text(USER_AGENT)
        expect(row(page, "101").locator("td").nth(3)).to_have_text("1 / 1")
        expect(row(page, "101").locator("td").nth(5)).to_have_text("N/A")
        expect(page.locator("#count-online")).to_have_text("1")
    finally:
        phone.unregister()
    unregistered = time.monotonic()
    expect(row(page, "101").locator(".badge")).to_have_text("offline", timeout=2000)
    assert time.monotonic() - unregistered < 2
    expect(page.locator("#count-online")).to_have_text("0")


SORT_KEYS = {"Extension": "ext", "Caller ID": "name", "Status": "status"}


def header(page: Page, name: str) -> Locator:
    return page.locator(f'thead th[data-sort="{SORT_KEYS[name]}"]')


def check_sorting(page: Page) -> None:
    page.get_by_role("button", name="Caller ID").click()
    expect(header(page, "Caller ID")).to_have_attribute("aria-sort", "ascending")
    expect_extensions(page, ["104", "103", "102", "101"])
    page.get_by_role("button", name="Caller ID").click()
    expect(header(page, "Caller ID")).to_have_attribute("aria-sort", "descending")
    expect_extensions(page, ["101", "102", "103", "104"])
    page.get_by_role("button", name="Status", exact=True).click()
    expect(header(page, "Status")).to_have_attribute("aria-sort", "ascending")
    expect_extensions(page, ["101", "103", "104", "102"])  # offline < online, then ext
    expect(header(page, "Caller ID")).not_to_have_attribute("aria-sort", re.compile(".*"))


def test_search_filter_and_sort_live_in_the_url(
    page: Page, service: ServiceProcess, lab: Lab
) -> None:
    phone = Phone(lab, "102", "102pass")
    phone.register()
    try:
        page.goto(board_url(service, ADMIN_TOKEN))
        expect(row(page, "102").locator(".badge")).to_have_text("online")

        page.get_by_label("Search").fill("jorg")  # accents fold: finds Jörg
        expect(page.locator("#rows tr[data-ext]")).to_have_count(1)
        expect_extensions(page, ["102"])
        page.get_by_label("Search").fill("front desk")
        expect(page.locator("#rows tr[data-ext]")).to_have_count(1)
        expect_extensions(page, ["103"])
        page.get_by_label("Search").fill("10")
        expect(page.locator("#rows tr[data-ext]")).to_have_count(4)

        page.get_by_label("Status").select_option("online")
        expect(page.locator("#rows tr[data-ext]")).to_have_count(1)
        expect_extensions(page, ["102"])
        page.get_by_label("Status").select_option("offline")
        expect(page.locator("#rows tr[data-ext]")).to_have_count(3)
        expect_extensions(page, ["101", "103", "104"])
        expect(page.locator("#shown")).to_have_text("3 of 4 extensions")

        page.get_by_label("Status").select_option("")
        check_sorting(page)

        page.get_by_label("Status").select_option("offline")
        page.get_by_role("button", name=re.compile("^Extension")).click()
        page.get_by_role("button", name=re.compile("^Extension")).click()
        expected = ["104", "103", "101"]
        expect_extensions(page, expected)
        assert "status=offline" in page.url and "sort=ext" in page.url and "dir=desc" in page.url

        # A reload (the token stays in this tab's sessionStorage) restores the view ...
        page.reload()
        expect(page.locator("#rows tr[data-ext]")).to_have_count(3)
        expect_extensions(page, expected)
        expect(page.get_by_label("Search")).to_have_value("10")
        expect(page.get_by_label("Status")).to_have_value("offline")
        expect(header(page, "Extension")).to_have_attribute("aria-sort", "descending")

        # ... and so does the bookmarked link in a fresh tab.
        view = page.url.split("#", 1)[1]
        other = page.context.new_page()
        other.goto(board_url(service, ADMIN_TOKEN, view))
        expect(other.locator("#rows tr[data-ext]")).to_have_count(3)
        expect_extensions(other, expected)
        expect(other.get_by_label("Status")).to_have_value("offline")
        other.close()
    finally:
        phone.unregister()


def test_detail_panel_shows_everything_and_no_secret_to_a_viewer(
    page: Page, service: ServiceProcess, lab: Lab
) -> None:
    phone = Phone(lab, "101", "101pass")
    phone.register()
    try:
        page.goto(board_url(service, VIEWER_TOKEN))
        expect(row(page, "101").locator(".badge")).to_have_text("online")
        row(page, "101").click()
        panel = page.get_by_role("dialog")
        expect(panel).to_be_visible()
        expect(panel.get_by_role("heading", name="Extension 101")).to_be_focused()
        for title in ("Endpoint", "Auth", "AOR", "Contacts", "Configuration (pjsip.conf)"):
            expect(panel.get_by_role("heading", name=title, exact=True)).to_be_visible()
        expect(panel).to_contain_text("from-internal")  # endpoint context
        expect(panel).to_contain_text("userpass")  # auth type
        expect(panel).to_contain_text(USER_AGENT)  # the contact
        expect(panel).to_contain_text(f"sip:101@127.0.0.1:{phone.local_port}")
        expect(panel).to_contain_text("rewrite_contact")  # the config section
        expect(panel).to_contain_text("********")
        html = page.content()
        for secret in ("101pass", "102pass", "103pass", "104pass"):
            assert secret not in html
        assert "ext=101" in page.url

        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(row(page, "101")).to_be_focused()
        assert "ext=" not in page.url

        # Keyboard only: the next row, Enter opens it.
        page.keyboard.press("ArrowDown")
        expect(row(page, "102")).to_be_focused()
        page.keyboard.press("Enter")
        expect(panel.get_by_role("heading", name="Extension 102")).to_be_visible()
        expect(panel).to_contain_text("No contact registered.")
        assert "102pass" not in page.content()
    finally:
        phone.unregister()


def test_admin_sees_the_secret_and_unknown_extensions_show_the_api_detail(
    page: Page, service: ServiceProcess
) -> None:
    page.goto(board_url(service, ADMIN_TOKEN, "ext=103"))
    panel = page.get_by_role("dialog")
    expect(panel.get_by_role("heading", name="Extension 103")).to_be_visible()
    expect(panel).to_contain_text("103pass")
    page.goto(board_url(service, ADMIN_TOKEN, "ext=999"))
    expect(panel).to_contain_text("Endpoint: Extension not found")
    expect(panel).to_contain_text("Configuration: Extension not found")


def test_a_rejected_token_asks_again(page: Page, service: ServiceProcess) -> None:
    page.goto(board_url(service, "not-a-valid-token"))
    expect(page.get_by_text("The token was not accepted")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('ispbx.token')") is None
    page.get_by_label("API token").fill(VIEWER_TOKEN)
    page.get_by_role("button", name="Open the board").click()
    expect(page.locator("#rows tr[data-ext]")).to_have_count(4)
    # Without a token in the URL or the tab, the form asks.
    fresh = page.context.new_page()
    fresh.goto(f"{service.base_url}/ui/")
    expect(fresh.get_by_label("API token")).to_be_visible()
    expect(fresh.get_by_label("API token")).to_have_attribute("type", "password")
    fresh.close()


def test_phone_sized_screen(page: Page, service: ServiceProcess) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(board_url(service, VIEWER_TOKEN))
    expect(page.locator("#rows tr[data-ext]")).to_have_count(4)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    row(page, "104").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_screenshot_of_the_board_with_live_phones(
    page: Page, service: ServiceProcess, lab: Lab, screenshots: Path
) -> None:
    phones = [Phone(lab, "101", "101pass"), Phone(lab, "102", "102pass")]
    for phone in phones:
        phone.register()
    try:
        page.set_viewport_size({"width": 1280, "height": 480})
        page.goto(board_url(service, ADMIN_TOKEN))
        expect(page.locator("#count-online")).to_have_text("2")
        expect(row(page, "102").locator(".ua")).to_have_text(USER_AGENT)
        page.locator("#q").blur()
        page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)
    finally:
        for phone in phones:
            phone.unregister()
    assert (screenshots / "dashboard.png").stat().st_size > 10_000


def synthetic_rows(count: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for n in range(count):
        extension = str(10000 + n)
        online = n % 3 == 0
        contacts = (
            [
                {
                    "uri": f"sip:{extension}@127.0.0.1:{20000 + n}",
                    "status": "Reachable",
                    "useragent": "Bulk/1.0",
                    "viaaddress": f"127.0.0.1:{20000 + n}",
                    "roundtripusec": str(1000 + n),
                    "regexpire": "1795971715",
                }
            ]
            if online
            else []
        )
        rows.append(
            {
                "extension": extension,
                "exists_in_config": n % 500 != 1,
                "in_asterisk": True,
                "status": "online" if online else "offline",
                "details": {"devicestate": "In use" if n % 7 == 0 else "Not in use"},
                "callerid": f'"Person {n:04d}" <{extension}>',
                "aor": {"maxcontacts": "1", "contactsregistered": str(len(contacts))},
                "contacts": contacts,
            }
        )
    return rows


def test_five_thousand_extensions_stay_smooth(page: Page, service: ServiceProcess) -> None:
    """The real page and CSP, with GET /endpoints answered by 5,000 synthetic rows."""
    body = json.dumps(
        {
            "status": "success",
            "ami_connected": True,
            "stale_since": None,
            "config_error": None,
            "endpoints": synthetic_rows(5000),
        }
    )
    page.route(
        re.compile(r"/endpoints$"),
        lambda route: route.fulfill(
            status=200, body=body, content_type="application/json", headers={"ETag": '"big"'}
        ),
    )
    page.route(re.compile(r"/events\?"), lambda route: route.fulfill(status=503, body=""))
    page.goto(board_url(service, ADMIN_TOKEN))
    expect(page.locator("#shown")).to_have_text("5000 of 5000 extensions")
    expect(page.locator("#rows tr[data-ext]")).to_have_count(100)  # one page in the DOM
    expect(page.locator("#page-info")).to_have_text("Page 1 of 50")
    expect(page.locator("#count-online")).to_have_text("1667")
    expect(page.locator("#count-call")).to_have_text("715")
    expect(row(page, "10001")).to_contain_text("not in pjsip.conf")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#page-info")).to_have_text("Page 2 of 50")
    expect(page.locator("#rows tr[data-ext] > th").first).to_have_text("10100")
    assert "page=2" in page.url

    # A re-sort of all 5,000 rows and a search, each measured up to the next frame.
    timings: list[float] = page.evaluate(
        """async () => {
            const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
            const times = [];
            let t0 = performance.now();
            document.querySelector('thead th[data-sort="name"] button').click();
            await frame();
            times.push(performance.now() - t0);
            const q = document.getElementById("q");
            t0 = performance.now();
            q.value = "person 4321";
            q.dispatchEvent(new Event("input"));
            await frame();
            times.push(performance.now() - t0);
            return times;
        }"""
    )
    expect_extensions(page, ["14321"])
    assert max(timings) < 500, timings
