"""The dashboard manages and remembers (issue 14): admins create, edit, delete and import
extensions through forms that preview the API's dry-run diff and apply only on confirm; viewers
see no edit control; the detail panel draws an extension's history.

Everything runs in Debian's chromium against the real service on a lab Asterisk of this module's
own (the tests change its files). The ``page`` fixture fails a test on any CSP violation.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from ispbx_lab.lab import Lab
from ispbx_lab.sipphone import ThreadedPhone, call_blocking
from tests.e2e.conftest import Phone, board_url, in_thread, start_service
from tests.integration.conftest import new_lab, start_or_skip
from tests.support import ADMIN_TOKEN, VIEWER_TOKEN, ServiceProcess, wait_for

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def own_lab(rootfs: None) -> Iterator[Lab]:
    instance = new_lab("e2e-manage")
    start_or_skip(instance)
    yield instance
    instance.remove()


@pytest.fixture(scope="module")
def own_service(own_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    process = start_service(own_lab, tmp_path_factory.mktemp("manage-board") / "service.log")
    yield process
    process.stop()


def call(service: ServiceProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**ADMIN, **kwargs.pop("headers", {})}
    return httpx.request(method, service.base_url + path, headers=headers, timeout=30, **kwargs)


def row(page: Page, extension: str) -> Locator:
    return page.locator(f'#rows tr[data-ext="{extension}"]')


def open_board(
    page: Page, service: ServiceProcess, token: str = ADMIN_TOKEN, view: str = ""
) -> None:
    page.goto(board_url(service, token, view))
    expect(page.locator("#link-state")).to_have_text("live")


def pick_codecs(page: Page, *codecs: str) -> None:
    """Add codecs to the chosen list one by one, so they keep this order."""
    for codec in codecs:
        page.locator("#codecs-available").select_option(codec)
        page.get_by_role("button", name="Add →").click()


def test_an_admin_creates_edits_and_deletes_an_extension_through_the_form(
    page: Page, own_service: ServiceProcess, own_lab: Lab, screenshots: Path
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_board(page, own_service)
    password = create_through_the_form(page, own_service, screenshots)
    expect(row(page, "250")).to_be_visible()
    expect(row(page, "250").locator("td.drift")).to_have_text("")
    assert call(own_service, "GET", "/endpoints/250").json()["in_asterisk"] is True
    assert "250" in own_lab.cli("pjsip show endpoints").stdout
    # The password shown once is the one Asterisk takes.
    phone = Phone(own_lab, "250", password)
    phone.register()
    try:
        expect(row(page, "250").locator(".badge-online")).to_be_visible()
    finally:
        phone.unregister()
    edit_the_codecs(page)
    assert "(ulaw|g722|alaw)" in own_lab.cli("pjsip show endpoint 250").stdout
    delete_after_a_confirm(page, own_service)


def create_through_the_form(page: Page, service: ServiceProcess, screenshots: Path) -> str:
    """Fill the form, preview the dry run's diff, apply; the generated password."""
    new = page.get_by_role("button", name="New extension")
    new.click()
    editor = page.locator("#editor")
    expect(editor.get_by_role("heading", name="New extension")).to_be_visible()
    expect(editor.get_by_label("Extension")).to_be_focused()  # focus moved into the dialog
    editor.get_by_label("Extension").fill("250")
    editor.get_by_label("Caller ID").fill('"Dana Scully" <250>')
    editor.get_by_label("Max contacts").fill("2")
    editor.get_by_label("endpoint-basic (endpoint)").check()
    pick_codecs(page, "g722", "ulaw")
    expect(editor.locator("#codecs-chosen option")).to_have_text(["g722", "ulaw"])
    editor.get_by_role("button", name="Add an option").click()
    editor.get_by_label("Option").select_option("dtmf_mode")
    value = editor.get_by_label("Value")
    expect(value.locator("option")).to_contain_text(["rfc4733 (default)", "inband", "info"])
    value.select_option("info")
    editor.get_by_role("button", name="Preview changes").click()

    preview = editor.locator("#editor-preview")
    expect(preview.get_by_role("heading", name="Preview of the change")).to_be_focused()
    expect(preview).to_contain_text("+[250](endpoint-basic)")
    expect(preview).to_contain_text("+allow = g722,ulaw")
    expect(preview).to_contain_text("+dtmf_mode = info")
    expect(preview).to_contain_text("+#include pjsip_ispbx.conf")
    expect(preview.locator(".d-add").first).to_be_visible()
    assert call(service, "GET", "/endpoints/250/config").status_code == 404  # not yet
    page.screenshot(path=str(screenshots / "manage-form.png"))

    editor.get_by_role("button", name="Apply").click()
    result = editor.locator("#editor-result")
    expect(result).to_contain_text("Created extension 250")
    expect(result).to_contain_text("Asterisk has it loaded.")
    password = result.locator("code.secret").inner_text()
    assert len(password) >= 12
    result.get_by_role("button", name="Copy").click()
    expect(result.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == password
    editor.get_by_role("button", name="Done").click()
    expect(editor).to_be_hidden()
    expect(new).to_be_focused()  # focus back where it was
    return password


def edit_the_codecs(page: Page) -> None:
    """Reorder the codecs and add one with the ordered pick list; the config section shows it."""
    row(page, "250").click()
    panel = page.locator("#detail")
    edit = panel.get_by_role("button", name="Edit")
    edit.click()
    editor = page.locator("#editor")
    expect(editor.get_by_role("heading", name="Edit extension 250")).to_be_visible()
    expect(editor.locator("#codecs-chosen option")).to_have_text(["g722", "ulaw"])
    expect(editor.get_by_label("Extension")).to_have_js_property("readOnly", True)
    editor.locator("#codecs-chosen").select_option("ulaw")
    editor.get_by_role("button", name="Move up").click()
    pick_codecs(page, "alaw")
    expect(editor.locator("#codecs-chosen option")).to_have_text(["ulaw", "g722", "alaw"])
    editor.get_by_role("button", name="Preview changes").click()
    preview = editor.locator("#editor-preview")
    expect(preview).to_contain_text("-allow = g722,ulaw")
    expect(preview).to_contain_text("+allow = ulaw,g722,alaw")
    editor.get_by_role("button", name="Apply").click()
    result = editor.locator("#editor-result")
    expect(result).to_contain_text("Changed extension 250")
    expect(result.locator("code.secret")).to_have_count(0)  # no password was set
    editor.get_by_role("button", name="Done").click()
    expect(edit).to_be_focused()
    config = panel.locator(".kv.raw")
    allow = config.locator("tr", has=page.locator("th", has_text=re.compile("^allow$")))
    expect(allow.locator("td")).to_have_text("ulaw,g722,alaw")


def delete_after_a_confirm(page: Page, service: ServiceProcess) -> None:
    panel = page.locator("#detail")
    panel.get_by_role("button", name="Delete…").click()
    confirm = page.locator("#confirm")
    expect(confirm.get_by_role("heading", name="Delete extension 250")).to_be_visible()
    expect(confirm).to_contain_text("-[250](endpoint-basic)")
    assert call(service, "GET", "/endpoints/250/config").status_code == 200  # still there
    confirm.get_by_role("button", name="Delete 250").click()
    expect(confirm).to_contain_text("Deleted extension 250")
    confirm.get_by_role("button", name="Close").click()
    expect(row(page, "250")).to_have_count(0)
    expect(panel).to_be_hidden()
    assert call(service, "GET", "/endpoints/250/config").status_code == 404


def test_refused_values_are_shown_next_to_their_fields(
    page: Page, own_service: ServiceProcess
) -> None:
    open_board(page, own_service)
    page.get_by_role("button", name="New extension").click()
    editor = page.locator("#editor")
    editor.get_by_label("Extension").fill("25 1")
    editor.get_by_label("Max contacts").fill("0")
    editor.get_by_role("button", name="Preview changes").click()
    errors = editor.locator("#editor-errors")
    expect(errors).to_have_attribute("role", "alert")  # announced
    expect(errors).to_contain_text("2 problems, shown next to the fields")
    expect(editor.locator("#f-extension-error")).to_contain_text("should match pattern")
    expect(editor.locator("#f-max-contacts-error")).to_contain_text("greater than or equal to 1")
    expect(editor.get_by_label("Extension")).to_have_attribute("aria-invalid", "true")
    expect(editor.get_by_label("Extension")).to_be_focused()

    # The planner's refusals name the option: an advanced row gets its own message.
    editor.get_by_label("Extension").fill("251")
    editor.get_by_label("Max contacts").fill("")
    editor.get_by_role("button", name="Add an option").click()
    editor.get_by_label("Object").select_option("aor")
    editor.get_by_label("Option").select_option("qualify_frequency")
    editor.get_by_label("Value").fill("-5")
    editor.get_by_role("button", name="Preview changes").click()
    expect(errors).to_contain_text("1 problem, shown next to the fields")
    expect(editor.locator(".adv-row .field-error")).to_contain_text("qualify_frequency")
    expect(editor.locator("#f-extension-error")).to_have_text("")
    # The option names come from Asterisk's table only: no free typing.
    assert editor.get_by_label("Option").evaluate("e => e.tagName") == "SELECT"
    assert call(own_service, "GET", "/endpoints/251/config").status_code == 404


BAD_CSV = (
    "extension,callerid,codecs,templates,max_contacts\n"
    "301,Alpha <301>,ulaw,endpoint-basic,1\n"
    "302,Bravo <302>,g722|bogus,endpoint-basic,1\n"
    "303,Charlie <303>,alaw,endpoint-basic,1\n"
)
GOOD_CSV = BAD_CSV.replace("g722|bogus", "g722|ulaw")


def choose_file(page: Page, name: str, text: str) -> None:
    page.get_by_label("CSV file").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": text.encode()}
    )
    page.get_by_role("button", name="Check the file").click()


def test_an_import_lists_each_bad_row_and_applies_nothing_then_a_good_file(
    page: Page, own_service: ServiceProcess
) -> None:
    open_board(page, own_service)
    before = page.locator("#rows tr[data-ext]").count()
    page.get_by_role("button", name="Import CSV").click()
    importer = page.locator("#importer")
    expect(importer.get_by_role("heading", name="Import extensions from CSV")).to_be_focused()

    choose_file(page, "bad.csv", BAD_CSV)
    report = importer.locator(".rows-report tbody tr")
    expect(report).to_have_count(3)
    expect(report.nth(0)).to_contain_text("2301ok")
    expect(report.nth(1)).to_contain_text("3302error")
    expect(report.nth(1)).to_contain_text("unknown codec 'bogus'")
    expect(report.nth(2)).to_contain_text("4303ok")
    expect(importer.locator("#import-errors")).to_contain_text(
        "1 of 3 rows have errors: nothing was applied"
    )
    expect(importer.get_by_role("button", name=re.compile("^Import \\d"))).to_be_hidden()
    for extension in ("301", "302", "303"):
        assert call(own_service, "GET", f"/endpoints/{extension}/config").status_code == 404
    assert page.locator("#rows tr[data-ext]").count() == before

    choose_file(page, "good.csv", GOOD_CSV)
    expect(report).to_have_count(3)
    expect(importer.locator(".rows-report .badge-error")).to_have_count(0)
    apply = importer.get_by_role("button", name="Import 3 extensions")
    expect(apply).to_be_focused()
    apply.click()
    expect(importer).to_contain_text("Imported 3 extensions")
    expect(importer.locator("code.secret")).to_have_count(3)  # generated passwords, once
    importer.get_by_role("button", name="Close").click()
    for extension in ("301", "302", "303"):
        expect(row(page, extension)).to_be_visible()
    expect(row(page, "302").locator("td").first).to_have_text("Bravo")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    exported = Path(download.value.path()).read_text()
    assert exported.startswith("extension,password,context,callerid,codecs")
    assert "302,,from-internal,Bravo <302>,g722|ulaw," in exported


def test_a_viewer_sees_no_edit_control_and_a_crafted_write_is_refused(
    page: Page, own_service: ServiceProcess
) -> None:
    open_board(page, own_service, VIEWER_TOKEN, "ext=101")
    panel = page.locator("#detail")
    expect(panel.get_by_role("heading", name="Configuration (pjsip.conf)")).to_be_visible()
    expect(panel.get_by_role("heading", name="History")).to_be_visible()
    controls = re.compile(r"New extension|Import CSV|^Edit$|Delete|Revert|Apply")
    expect(page.get_by_role("button", name=controls)).to_have_count(0)
    page.get_by_role("button", name="Recent changes").click()
    changes = page.locator("#changes")
    expect(changes.get_by_role("tab")).to_have_text(["PBX events"])  # no audit, no versions
    changes.get_by_role("button", name="Close").click()

    statuses = page.evaluate(
        """async () => {
            const token = sessionStorage.getItem("ispbx.token");
            const base = new URL("../", location.href);
            const send = (path, init) => fetch(new URL(path, base), {
                ...init, headers: {Authorization: `Bearer ${token}`, ...init.headers},
            }).then((r) => r.status);
            const json = {"Content-Type": "application/json"};
            return [
                await send("endpoints", {method: "POST", headers: json,
                                         body: JSON.stringify({extension: "666"})}),
                await send("endpoints/101", {method: "PATCH", headers: {...json, "If-Match": "*"},
                                             body: JSON.stringify({endpoint: {context: "x"}})}),
                await send("endpoints/101", {method: "DELETE", headers: {"If-Match": "*"}}),
                await send("audit", {method: "GET", headers: {}}),
            ];
        }"""
    )
    assert statuses == [403, 403, 403, 403]
    assert call(own_service, "GET", "/endpoints/666/config").status_code == 404


def test_a_change_made_behind_the_forms_back_is_offered_a_reload(
    page: Page, own_service: ServiceProcess, own_lab: Lab
) -> None:
    open_board(page, own_service, ADMIN_TOKEN, "ext=101")
    page.locator("#detail").get_by_role("button", name="Edit").click()
    editor = page.locator("#editor")
    expect(editor.get_by_label("Caller ID")).to_have_value('"user101" <101>')
    editor.get_by_label("Caller ID").fill('"Reception" <101>')
    editor.get_by_role("button", name="Preview changes").click()
    expect(editor.locator("#editor-preview")).to_contain_text('+callerid = "Reception" <101>')

    with own_lab.pjsip_conf.open("a") as conf:  # a hand edit on the PBX meanwhile
        conf.write("; edited by hand while the form was open\n")
    editor.get_by_role("button", name="Apply").click()
    errors = editor.locator("#editor-errors")
    expect(errors).to_contain_text("The configuration files changed since this was shown")
    reload = editor.get_by_role("button", name="Reload and re-apply")
    expect(reload).to_be_focused()
    assert "Reception" not in own_lab.pjsip_conf.read_text()

    reload.click()
    expect(editor.locator("#editor-preview")).to_contain_text('+callerid = "Reception" <101>')
    editor.get_by_role("button", name="Apply").click()
    expect(editor.locator("#editor-result")).to_contain_text("Changed extension 101")
    text = own_lab.pjsip_conf.read_text()
    assert 'callerid = "Reception" <101>' in text
    assert "; edited by hand while the form was open" in text  # the hand edit is kept


def test_a_config_version_is_reverted_after_a_confirm(
    page: Page, own_service: ServiceProcess
) -> None:
    body = {"extension": "260", "callerid": "Temp <260>", "templates": ["endpoint-basic"]}
    created = call(own_service, "POST", "/endpoints", json=body)
    assert created.status_code == 201, created.text
    version = created.json()["version"]
    open_board(page, own_service)
    expect(row(page, "260")).to_be_visible()
    page.get_by_role("button", name="Recent changes").click()
    changes = page.locator("#changes")
    expect(changes.get_by_role("tab", name="PBX events")).to_have_attribute("aria-selected", "true")
    expect(changes.locator("#panel-events")).to_contain_text("pjsip.conf loaded")
    changes.get_by_role("tab", name="Audit").click()
    expect(changes.locator("#panel-audit tbody tr").first).to_contain_text("create endpoint 260")
    changes.get_by_role("tab", name="Config versions").click()
    item = changes.locator(f'li[data-version="{version}"]')
    expect(item).to_contain_text("create 260")
    item.get_by_role("button", name="Show diff").click()
    expect(item).to_contain_text("+[260](endpoint-basic)")
    expect(item).to_contain_text("password = ********")  # masked in the stored diff

    item.get_by_role("button", name="Revert…").click()
    confirm = page.locator("#confirm")
    expect(confirm.get_by_role("heading", name=f"Revert config version {version}")).to_be_focused()
    expect(confirm).to_contain_text("-[260](endpoint-basic)")
    assert call(own_service, "GET", "/endpoints/260/config").status_code == 200  # not yet
    confirm.get_by_role("button", name=f"Revert version {version}").click()
    expect(confirm).to_contain_text(f"Reverted version {version}")
    confirm.get_by_role("button", name="Close").click()
    expect(confirm).to_be_hidden()
    expect(changes.get_by_role("heading", name="Recent changes")).to_be_focused()  # back below
    expect(row(page, "260")).to_have_count(0)
    assert call(own_service, "GET", "/endpoints/260/config").status_code == 404


def test_a_flapping_phone_gets_a_badge(
    page: Page, own_service: ServiceProcess, own_lab: Lab
) -> None:
    open_board(page, own_service, VIEWER_TOKEN)
    expect(row(page, "103").locator(".badge-flapping")).to_have_count(0)
    phone = Phone(own_lab, "103", "103pass")
    for _ in range(2):  # four changes of registration within the flap window
        phone.register()
        expect(row(page, "103").locator(".badge-online")).to_be_visible()
        phone.unregister()
        expect(row(page, "103").locator(".badge-offline")).to_be_visible()
    badge = row(page, "103").locator(".badge-flapping")
    expect(badge).to_have_text("flapping")
    expect(badge).to_have_attribute("title", re.compile("changed many times"))


def status(service: ServiceProcess, extension: str) -> str:
    rows = call(service, "GET", "/endpoints", params={"q": extension}).json()["endpoints"]
    found: str = next(r["status"] for r in rows if r["extension"] == extension)
    return found


def set_qualify(service: ServiceProcess, extension: str, seconds: int) -> None:
    etag = call(service, "GET", f"/endpoints/{extension}/config").headers["etag"]
    answer = call(
        service,
        "PATCH",
        f"/endpoints/{extension}",
        headers={"If-Match": etag},
        json={"aor": {"qualify_frequency": seconds}},
    )
    assert answer.status_code == 200, answer.text


def test_the_timeline_shows_the_gap_of_a_phone_that_was_away(
    page: Page, own_service: ServiceProcess, own_lab: Lab, screenshots: Path
) -> None:
    """102 registers (qualified, so Asterisk measures its RTT), takes a call from 103 (ringing,
    in use), is unregistered for a few seconds and registers again."""
    set_qualify(own_service, "102", 1)
    registrar = ("127.0.0.1", own_lab.sip_port)
    with ThreadedPhone("102", "102pass", registrar=registrar, ring_seconds=1.0) as phone:
        phone.register(120)
        time.sleep(2)
        in_thread(call_blocking, "103", "103pass", "102", seconds=1.5, registrar=registrar)
        time.sleep(1)
        phone.unregister()
        time.sleep(4)
        phone.register(120)
        time.sleep(2)
        wait_for(lambda: status(own_service, "102") == "online", 5, "102 online again")
        try:
            check_timeline(page, own_service, screenshots)
        finally:
            phone.unregister()


def check_timeline(page: Page, service: ServiceProcess, screenshots: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 1000})
    open_board(page, service, VIEWER_TOKEN, "ext=102")
    history = page.locator("#detail .history")
    expect(history.get_by_role("button", name="24 h")).to_have_attribute("aria-pressed", "true")
    summary = history.locator(".availability")
    expect(summary).to_contain_text(re.compile(r"\d+(\.\d)? % available over the last 24 h"))
    chart = history.locator("svg.timeline")
    expect(chart).to_have_attribute("aria-label", re.compile(r"1 outage"))
    history.get_by_role("button", name="Zoom to recorded data").click()
    expect(history.get_by_role("button", name="Zoom to recorded data")).to_have_attribute(
        "aria-pressed", "true"
    )

    bars = chart.locator("rect.tl").evaluate_all(
        """rects => rects
            .filter((r) => r.dataset.state !== "unknown")
            .map((r) => ({state: r.dataset.state, x: r.getBBox().x, w: r.getBBox().width}))
            .sort((a, b) => a.x - b.x)"""
    )
    states = [bar["state"] for bar in bars]
    assert states == ["online", "offline", "online"], bars
    gap = bars[1]
    assert gap["w"] > 20, bars  # zoomed: a 4 s gap of ~15 s recorded is wide
    outage = history.locator(".outage-list li")
    expect(outage).to_have_count(1)
    expect(outage).to_contain_text(re.compile(r"Offline .* \([3-6] s\)"))
    marks = chart.locator("rect.dm")
    expect(chart.locator("rect.dm-ringing")).not_to_have_count(0)
    expect(chart.locator("rect.dm-inuse")).not_to_have_count(0)
    expect(marks.first.locator("title")).to_have_text(re.compile(r"(Ringing|In use) at \d\d:"))
    expect(history.locator("svg.rtt circle")).not_to_have_count(0)

    events = history.locator("table.events tbody tr")
    expect(events.filter(has_text="Unregistered")).to_have_count(1)
    kinds = events.evaluate_all("rows => rows.map((r) => r.dataset.kind)")
    assert kinds.index("registered") < kinds.index("unregistered"), kinds  # newest first
    assert kinds.count("registered") == 2, kinds

    history.locator("svg.rtt").scroll_into_view_if_needed()
    box = history.bounding_box()
    assert box is not None
    history.get_by_role("heading", name="History").scroll_into_view_if_needed()
    box = history.bounding_box()
    assert box is not None
    page.screenshot(
        path=str(screenshots / "history-timeline.png"),
        clip={"x": box["x"] - 8, "y": box["y"] - 8, "width": box["width"] + 16, "height": 520},
    )
    assert (screenshots / "history-timeline.png").stat().st_size > 10_000


def history_page(cursor: str | None, count: int, next_cursor: str | None) -> dict[str, Any]:
    start = 0 if cursor is None else 50
    events = [
        {
            "id": 1000 - n,
            "pbx": "default",
            "endpoint": "104",
            "kind": "device_state",
            "occurred_at": f"2026-12-01T12:{59 - (n // 60) % 60:02d}:{59 - n % 60:02d}Z",
            "data": {"state": "Not in use", "previous": "In use"},
        }
        for n in range(start, start + count)
    ]
    return {"events": events, "next_cursor": next_cursor}


def test_the_events_list_pages_with_the_cursor(page: Page, own_service: ServiceProcess) -> None:
    def answer(route: Any) -> None:
        url = route.request.url
        if "limit=1000" in url:  # the charts' query
            body = {"events": [], "next_cursor": None}
        elif "cursor=" in url:
            assert "cursor=page2" in url
            body = history_page("page2", 10, None)
        else:
            body = history_page(None, 50, "page2")
        route.fulfill(status=200, body=json.dumps(body), content_type="application/json")

    page.route(re.compile(r"/endpoints/104/history\?"), answer)
    open_board(page, own_service, VIEWER_TOKEN, "ext=104")
    history = page.locator("#detail .history")
    events = history.locator("table.events tbody tr")
    expect(events).to_have_count(50)
    older = history.get_by_role("button", name="Older events")
    older.click()
    expect(events).to_have_count(60)
    expect(older).to_be_hidden()
    expect(events.nth(50)).to_contain_text("In use → Not in use")


def test_a_rolled_back_change_says_what_asterisk_did_differently(
    page: Page, own_service: ServiceProcess
) -> None:
    """Asterisk refusing a change as meant is rare on a lab: the apply's answer is faked (the
    dry run is real), the 409 body as the API sends it."""
    rolled_back = {
        "detail": "Asterisk did not load the change as meant; the files were put back",
        "mismatches": [
            {
                "object_type": "endpoint",
                "object_id": "270",
                "option": "context",
                "expected": "sales",
                "actual": "default",
            }
        ],
    }

    def answer(route: Any) -> None:
        if route.request.method != "POST" or "dry_run=true" in route.request.url:
            route.continue_()
        else:
            route.fulfill(status=409, body=json.dumps(rolled_back), content_type="application/json")

    page.route(re.compile(r"/endpoints(\?.*)?$"), answer)
    open_board(page, own_service)
    page.get_by_role("button", name="New extension").click()
    editor = page.locator("#editor")
    editor.get_by_label("Extension").fill("270")
    editor.get_by_label("Context").fill("sales")
    editor.get_by_role("button", name="Preview changes").click()
    expect(editor.locator("#editor-preview")).to_contain_text("+context = sales")
    editor.get_by_role("button", name="Apply").click()
    errors = editor.locator("#editor-errors")
    expect(errors).to_contain_text("Refused (409): Asterisk did not load the change as meant")
    expect(errors.locator(".mismatches li")).to_have_text(
        ['endpoint 270: context is "default" in Asterisk, not "sales"']
    )
    assert call(own_service, "GET", "/endpoints/270/config").status_code == 404
