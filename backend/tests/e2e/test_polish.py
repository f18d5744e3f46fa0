"""Dashboard polish seen in screenshots (issue 10, item 6): readable labels in the detail panel, a
Drift column that explains itself (and hides while nothing drifts), contacts that fit the panel at
1400 px, and a contact without qualify that says why it still looks online."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from ispbx_lab.lab import Lab, free_port
from tests.e2e.conftest import Phone, board_url
from tests.support import ADMIN_TOKEN, VIEWER_TOKEN, ServiceProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def phone_101(lab: Lab) -> Iterator[Phone]:
    phone = Phone(lab, "101", "101pass")
    phone.register()
    try:
        yield phone
    finally:
        phone.unregister()


def open_detail(
    page: Page, service: ServiceProcess, extension: str, token: str = VIEWER_TOKEN
) -> Locator:
    page.goto(board_url(service, token, f"ext={extension}"))
    panel = page.get_by_role("dialog")
    expect(panel.get_by_role("heading", name=f"Extension {extension}")).to_be_visible()
    expect(panel.get_by_role("heading", name="Configuration (pjsip.conf)")).to_be_visible()
    return panel


def test_the_detail_panel_shows_readable_labels(
    page: Page, service: ServiceProcess, phone_101: Phone
) -> None:
    panel = open_detail(page, service, "101")
    expect(panel.get_by_role("heading", name="Contact", exact=True)).to_be_visible()
    headers = panel.locator(".kv:not(.raw) th[scope=row]")  # AMI's fields, not pjsip.conf's
    labels = headers.all_inner_texts()
    for readable in ("Max contacts", "Caller ID", "Device state", "User agent", "Auth type"):
        assert readable in labels, labels
    for raw in ("maxcontacts", "callerid", "devicestate", "useragent", "authtype"):
        assert raw not in labels, raw
    expect(panel.locator('.kv th[title="maxcontacts"]')).to_have_text("Max contacts")
    expect(panel.locator(".kv.raw")).to_contain_text("rewrite_contact")  # the file's own names
    expires = panel.locator("tr", has=page.locator('th[title="regexpire"]')).locator("td")
    expect(expires).to_have_text(re.compile(r"\d\d:\d\d:\d\d \(\d{10}\)"))


def test_contacts_are_not_clipped_at_1400_px(
    page: Page, service: ServiceProcess, phone_101: Phone
) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    panel = open_detail(page, service, "101")
    contacts = panel.locator(".contacts")
    expect(contacts).to_contain_text(f"sip:101@127.0.0.1:{phone_101.local_port}")
    clipped = page.evaluate(
        """() => {
            const panel = document.getElementById("detail").getBoundingClientRect();
            const out = [];
            const nodes = document.querySelectorAll("#detail .contacts, #detail .contacts *");
            for (const node of nodes) {
                const box = node.getBoundingClientRect();
                const name = `${node.tagName} "${node.textContent.slice(0, 30)}"`;
                if (node.scrollWidth > node.clientWidth + 1 && node.clientWidth > 0)
                    out.push(`${name} scrolls: ${node.scrollWidth} > ${node.clientWidth}`);
                if (box.width && (box.right > panel.right + 1 || box.left < panel.left - 1))
                    out.push(`${name} is outside the panel`);
            }
            return out;
        }"""
    )
    assert clipped == []


def test_an_unqualified_contact_explains_why_it_looks_online(
    page: Page, service: ServiceProcess, phone_101: Phone
) -> None:
    page.goto(board_url(service, VIEWER_TOKEN))
    rtt = page.locator('#rows tr[data-ext="101"] td[data-label="RTT"] .hint')
    expect(rtt).to_have_text("N/A")
    expect(rtt).to_have_attribute("title", re.compile(r"qualify_frequency = 0"))
    expect(rtt).to_have_attribute(
        "title", re.compile(r"stays online until its registration expires.*expires at \d\d:\d\d")
    )
    page.locator('#rows tr[data-ext="101"]').click()
    note = page.get_by_role("dialog").get_by_role("note")
    expect(note).to_contain_text("Not qualified")
    expect(note).to_contain_text("until its registration expires")


def test_the_drift_column_hides_while_nothing_drifts(page: Page, service: ServiceProcess) -> None:
    page.goto(board_url(service, ADMIN_TOKEN))
    expect(page.locator("#rows tr[data-ext]")).to_have_count(4)
    expect(page.locator('thead th[data-sort="drift"]')).to_be_hidden()
    expect(page.locator("#drift-legend")).to_be_hidden()


def drifting_list() -> str:
    rows = []
    for n, (in_config, in_asterisk) in enumerate([(True, True), (False, True), (True, True)]):
        extension = str(201 + n)
        rows.append(
            {
                "extension": extension,
                "exists_in_config": in_config,
                "in_asterisk": in_asterisk,
                "status": "offline",
                "details": {"devicestate": "Unavailable"},
                "callerid": f'"Person {n}" <{extension}>',
                "aor": {"maxcontacts": "1", "contactsregistered": "0"},
                "contacts": [],
            }
        )
    envelope = {"status": "success", "ami_connected": True, "synced": True}
    return json.dumps({**envelope, "stale_since": None, "config_error": None, "endpoints": rows})


def test_the_drift_column_explains_itself_when_a_row_drifts(
    page: Page, service: ServiceProcess
) -> None:
    body = drifting_list()
    page.route(
        re.compile(r"/endpoints$"),
        lambda route: route.fulfill(status=200, body=body, content_type="application/json"),
    )
    page.route(re.compile(r"/events\?"), lambda route: route.fulfill(status=503, body=""))
    page.goto(board_url(service, ADMIN_TOKEN))
    expect(page.locator("#rows tr[data-ext]")).to_have_count(3)
    header = page.locator('thead th[data-sort="drift"]')
    expect(header).to_be_visible()
    expect(header.locator("button")).to_have_attribute("title", re.compile("pjsip.conf"))
    legend = page.locator("#drift-legend")
    expect(legend).to_be_visible()
    expect(header).to_have_attribute("aria-describedby", "drift-legend")
    expect(legend.locator('[data-mark="not in pjsip.conf"]')).to_be_visible()
    expect(legend.locator('[data-mark="not in pjsip.conf"]')).to_contain_text("loaded in Asterisk")
    expect(legend.locator('[data-mark="not loaded in Asterisk"]')).to_be_hidden()  # none of those
    expect(page.locator('#rows tr[data-ext="202"] td.drift')).to_have_text("not in pjsip.conf")


def test_a_never_reached_asterisk_is_not_shown_as_stale(page: Page, tmp_path: Path) -> None:
    service = ServiceProcess({"ISPBX_AMI_PORT": str(free_port())}, tmp_path / "s.log").start()
    try:
        page.goto(board_url(service, VIEWER_TOKEN))
        banner = page.locator("#ami-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("Asterisk not reached yet")
        expect(banner).not_to_contain_text("states as of")
        expect(page.locator("#ami-state")).to_have_text("not reached yet")
        expect(page.locator("#rows tr[data-ext]")).to_have_count(4)  # pjsip.conf's extensions
    finally:
        service.stop()
