"""The document model against the real Asterisk: edits on a multi-file config (comments,
templates, `(+)`, glob and nested includes) written with only the intended lines changed,
reloaded, and read back with `pjsip show ...`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ispbx.manage.document import ConfigDocument
from ispbx_lab.lab import Lab
from tests.integration.conftest import running_lab
from tests.unit.manage.support import changed_lines

pytestmark = pytest.mark.integration
CONF_DIR = Path(__file__).parent / "pjsip_multi"
_FIELD = re.compile(r"^\s*([A-Za-z0-9_]+)\s+:\s(.*?)\s*$")


def conf_files() -> dict[str, str]:
    return {str(p.relative_to(CONF_DIR)): p.read_text() for p in CONF_DIR.rglob("*.conf")}


@pytest.fixture(scope="module")
def document_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("document", conf_files())


def shown(lab: Lab, command: str) -> dict[str, str]:
    """The `name : value` fields of a `pjsip show <kind> <id>` answer."""
    output = lab.cli(command).stdout
    assert "Unable to find" not in output, output
    return {m[1]: m[2] for line in output.splitlines() if (m := _FIELD.match(line))}


def edit(document: ConfigDocument) -> None:
    document.set_option("endpoint", "201", "context", "ctx-201")  # only in a template: override
    document.set_option("endpoint", "201", "language", "pl")  # in a (+) continuation
    document.set_codecs("endpoint", "202", ["g722", "ulaw"])  # own + template codec lines
    document.set_option("endpoint", "203", "callerid", '"Chef ; Koch" <203>')  # glob include
    document.remove_option("endpoint", "204", "language")  # tpl-child's `fr` applies again
    document.set_option("aor", "201", "max_contacts", "5")
    document.delete_section("identify", "trunk-out-identify")  # nested include
    document.ensure_include(document.main, "pjsip_ispbx.conf", "endpoints managed by ISPBX Manager")
    managed = document.main.parent / "pjsip_ispbx.conf"
    document.add_section(
        managed, "205", templates=["tpl-base"], options=[("auth", "205"), ("aors", "205")]
    )
    document.add_section(
        managed, "205", options=[("type", "auth"), ("username", "205"), ("password", "pw205")]
    )
    document.add_section(managed, "205", options=[("type", "aor"), ("max_contacts", "1")])


EXPECTED_LINES = {
    "pjsip.conf": (
        ["max_contacts = 2", "language = de", "allow = ulaw", "disallow = gsm"],
        [
            "context = ctx-201",
            "max_contacts = 5",
            "language = pl",
            "disallow = all",
            "allow = g722,ulaw",
            "; endpoints managed by ISPBX Manager",
            "#include pjsip_ispbx.conf",
            "",
        ],
    ),
    "pjsip.d/10-users.conf": (
        ['callerid = "Jörg Müller" <203>'],
        ['callerid = "Chef \\; Koch" <203>'],
    ),
    "pjsip.d/20-language.conf": (["language = it", "language = pt_BR"], []),
    "nested/trunk.conf": (
        [
            "",
            "[trunk-out-identify]",
            "type = identify",
            "endpoint = trunk-out",
            "match = 127.0.0.2",
            "match = 127.0.0.3",
        ],
        [],
    ),
}


def test_edits_reach_asterisk_and_change_only_their_lines(document_lab: Lab) -> None:
    before = shown(document_lab, "pjsip show endpoint alice.smith")
    document = ConfigDocument.load(document_lab.pjsip_conf)
    old = {path: path.read_bytes() for path in document.files}
    edit(document)
    changed = document.changed_files()
    names = {str(path.relative_to(document_lab.etc)): data for path, data in changed.items()}
    assert set(names) == {*EXPECTED_LINES, "pjsip_ispbx.conf"}
    for name, (removed, added) in EXPECTED_LINES.items():
        path = document_lab.etc / name
        gone, new = changed_lines(old[path], names[name])  # (a diff may align a blank either way)
        assert sorted(gone) == sorted(r.encode() for r in removed), name
        assert sorted(new) == sorted(a.encode() for a in added), name
    log = document_lab.home / "log" / "messages.log"
    logged = log.read_text(errors="replace") if log.exists() else ""
    document_lab.write_pjsip({name: data.decode() for name, data in names.items()})
    document_lab.reload_pjsip()
    new_log = (log.read_text(errors="replace") if log.exists() else "")[len(logged) :]
    assert "Could not create an object" not in new_log, new_log
    listed = document_lab.cli("pjsip show endpoints").stdout
    names_seen = re.findall(r"^\s*Endpoint:\s+(\S+?)(?:/\S*)?\s", listed, re.M)
    names_seen = [n for n in names_seen if not n.startswith("<")]  # the column header
    assert sorted(names_seen) == ["201", "202", "203", "204", "205", "alice.smith", "trunk-out"]

    endpoint = shown(document_lab, "pjsip show endpoint 201")
    assert (endpoint["context"], endpoint["language"]) == ("ctx-201", "pl")
    assert shown(document_lab, "pjsip show endpoint 202")["allow"] == "(g722|ulaw)"
    assert "Chef ; Koch" in shown(document_lab, "pjsip show endpoint 203")["callerid"]
    assert shown(document_lab, "pjsip show endpoint 204")["language"] == "fr"
    assert shown(document_lab, "pjsip show aor 201")["max_contacts"] == "5"
    assert "trunk-out-identify" not in document_lab.cli("pjsip show identifies").stdout
    added = shown(document_lab, "pjsip show endpoint 205")
    assert (added["context"], added["aors"], added["auth"]) == ("base-ctx", "205", "205")
    assert shown(document_lab, "pjsip show auth 205")["username"] == "205"
    assert shown(document_lab, "pjsip show endpoint alice.smith") == before
