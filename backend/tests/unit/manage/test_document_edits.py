"""Each edit changes exactly the lines it must (byte comparison) and the reader then reads
what was meant, for the edited object and, unchanged, for every other one."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ispbx.manage.document import (
    ConfigDocument,
    ConfigRejectedError,
    DocumentError,
    DuplicateObjectError,
    InvalidNameError,
    InvalidValueError,
    TemplateOnlyError,
    UnknownFileError,
    UnknownObjectError,
    UnknownTemplateError,
    UnsafeEditError,
)
from tests.unit.manage.support import CONF_DIR, MAIN, Files, changed_lines, effective

BASE = """\
; ISPBX test config
[tpl](!)
type = endpoint
context = from-tpl
disallow = all
allow = ulaw
language = en

[101](tpl)
auth = 101
context => a   ; customer X
set_var = A=1

[101]
type = aor
max_contacts = 1

; about 102
[102](tpl)
auth=102
; trailing comment of 102

[101](+)
language = de
"""

Edit = Callable[[ConfigDocument], object]


def edited(
    files: Files | str, edit: Edit, *, changes: tuple[list[str], list[str]] | None = None
) -> tuple[Files, dict[tuple[str, str], dict[str, str]]]:
    """Apply `edit`, check the reader accepts the result and the unedited objects kept their
    effective options; returns the new files and the objects whose options changed."""
    before = Files({"pjsip.conf": files}) if isinstance(files, str) else files
    document = before.load()
    edit(document)
    after = before.with_changes(document)
    old, new = effective(before.parse()), effective(after.parse())
    assert document.sections() == after.parse().sections  # the model agrees with the reader
    touched = {key: value for key, value in new.items() if old.get(key) != value}
    touched.update({key: {} for key in old if key not in new})
    if changes is not None:
        removed, added = changed_lines(before.read(MAIN), after.read(MAIN))
        assert (removed, added) == (
            [line.encode() for line in changes[0]],
            [line.encode() for line in changes[1]],
        )
    return after, touched


def options_of(files: Files, kind: str, name: str) -> dict[str, str]:
    return dict(files.parse().objects(kind)[name].options)


# -- set_option --------------------------------------------------------------------------


def test_set_option_rewrites_the_value_and_keeps_operator_spacing_and_comment() -> None:
    after, touched = edited(
        BASE,
        lambda d: d.set_option("endpoint", "101", "context", "b"),
        changes=(["context => a   ; customer X"], ["context => b   ; customer X"]),
    )
    assert list(touched) == [("endpoint", "101")]
    assert options_of(after, "endpoint", "101")["context"] == "b"


def test_set_option_edits_the_last_own_line_also_in_a_continuation() -> None:
    after, _ = edited(
        BASE,
        lambda d: d.set_option("endpoint", "101", "language", "fr"),
        changes=(["language = de"], ["language = fr"]),
    )
    assert options_of(after, "endpoint", "101")["language"] == "fr"


def test_earlier_duplicate_lines_of_a_last_wins_option_stay() -> None:
    text = "[200]\ntype=endpoint\nlanguage=en\nlanguage=de\n"
    after, _ = edited(
        text,
        lambda d: d.set_option("endpoint", "200", "language", "it"),
        changes=(["language=de"], ["language=it"]),
    )
    assert options_of(after, "endpoint", "200")["language"] == "it"


def test_template_value_gets_an_override_before_trailing_comments_and_blank_lines() -> None:
    after, touched = edited(
        BASE,
        lambda d: d.set_option("endpoint", "102", "context", "c2"),
        changes=([], ["context=c2"]),
    )
    text = after.read(MAIN).decode()
    assert "auth=102\ncontext=c2\n; trailing comment of 102\n" in text
    assert "context = from-tpl" in text  # the template is not touched
    assert list(touched) == [("endpoint", "102")]


def test_new_option_of_a_bare_section_goes_right_after_its_header() -> None:
    text = "[200]\ntype=aor\n\n[300]\ntype=aor\n"
    after, _ = edited(text, lambda d: d.set_option("aor", "300", "max_contacts", "5"))
    assert after.read(MAIN) == b"[200]\ntype=aor\n\n[300]\ntype=aor\nmax_contacts=5\n"
    text = "[t](!)\ntype=aor\n[200](t)\n; note\n[300]\ntype=aor\n"
    after, _ = edited(text, lambda d: d.set_option("aor", "200", "max_contacts", "5"))
    assert b"[200](t)\nmax_contacts = 5\n; note\n" in after.read(MAIN)


def test_option_in_an_included_file_is_edited_there_only() -> None:
    files = Files(
        {"pjsip.conf": "[200]\ntype=endpoint\n#include extra.conf\n", "extra.conf": "context=x\n"}
    )
    document = files.load()
    document.set_option("endpoint", "200", "context", "y")
    assert document.changed_files() == {CONF_DIR / "extra.conf": b"context=y\n"}


def test_crlf_lines_stay_crlf() -> None:
    text = "[200]\r\ntype = endpoint\r\ncontext = a\r\n"
    after, _ = edited(text, lambda d: d.set_option("endpoint", "200", "context", "b"))
    assert after.read(MAIN) == b"[200]\r\ntype = endpoint\r\ncontext = b\r\n"
    after, _ = edited(text, lambda d: d.set_option("endpoint", "200", "language", "de"))
    assert after.read(MAIN) == b"[200]\r\ntype = endpoint\r\ncontext = a\r\nlanguage = de\r\n"


def test_plus_equals_line_becomes_a_plain_assignment() -> None:
    text = "[200]\ntype=endpoint\ncallerid = Bob\ncallerid += ' Jr'\n"
    after, _ = edited(text, lambda d: d.set_option("endpoint", "200", "callerid", "Ann <1>"))
    assert after.read(MAIN) == b"[200]\ntype=endpoint\ncallerid = Bob\ncallerid = Ann <1>\n"


def test_semicolons_are_escaped_and_read_back_literally() -> None:
    after, _ = edited(BASE, lambda d: d.set_option("endpoint", "101", "callerid", "Bob ; Jr <1>"))
    assert b"callerid = Bob \\; Jr <1>\n" in after.read(MAIN)
    assert options_of(after, "endpoint", "101")["callerid"] == "Bob ; Jr <1>"


@pytest.mark.parametrize(
    ("line", "value", "expected"),
    [
        ("context=a", ">b", "context= >b"),  # `context=>b` would be the `=>` operator
        ("context=a;note", "b-", "context=b- ;note"),  # `b-;` keeps the comment a comment
        ("context=a;note", "b\\", "context=b\\ ;note"),  # `b\\;` would escape it
        ("context =;note", "b", "context = b ;note"),
        ("\\context = a", "b", "\\context = b"),
        ("Context\t=\ta\t; x", "b", "Context\t=\tb\t; x"),
    ],
)
def test_rewritten_lines_read_back_exactly(line: str, value: str, expected: str) -> None:
    after, _ = edited(
        f"[200]\ntype=endpoint\n{line}\n",
        lambda d: d.set_option("endpoint", "200", "context", value),
    )
    assert after.read(MAIN) == f"[200]\ntype=endpoint\n{expected}\n".encode()
    assert options_of(after, "endpoint", "200")["context"] == value


def test_bom_of_an_included_file_is_kept() -> None:
    files = Files(
        {
            "pjsip.conf": "[200]\ntype=endpoint\n#include extra.conf\n",
            "extra.conf": "\ufeffcontext=x\n",
        }
    )
    after, _ = edited(files, lambda d: d.set_option("endpoint", "200", "context", "y"))
    assert after.read(CONF_DIR / "extra.conf") == "\ufeffcontext=y\n".encode()


def test_invalid_utf8_elsewhere_in_the_file_is_untouched() -> None:
    files = Files({"pjsip.conf": b"; caf\xe9 \xff\n[200]\ntype=endpoint\ncallerid=J\xf6rg\n"})
    after, _ = edited(files, lambda d: d.set_option("endpoint", "200", "language", "de"))
    assert (
        after.read(MAIN) == b"; caf\xe9 \xff\n[200]\ntype=endpoint\ncallerid=J\xf6rg\nlanguage=de\n"
    )


def test_value_from_a_template_copied_by_a_continuation_is_overridden_after_it() -> None:
    text = "[t](!)\nlanguage=t\n[200]\ntype=endpoint\nlanguage=own\n[200](+,t)\nauth=x\n"
    after, _ = edited(text, lambda d: d.set_option("endpoint", "200", "language", "new"))
    assert after.read(MAIN).endswith(b"[200](+,t)\nauth=x\nlanguage=new\n")
    assert options_of(after, "endpoint", "200")["language"] == "new"


# -- codecs ------------------------------------------------------------------------------


def test_codecs_replace_own_lines_at_the_first_of_them() -> None:
    text = (
        "[t](!)\ndisallow=all\nallow=alaw\n"
        "[200](t)\ntype=endpoint\nallow = ulaw ; old\ndisallow=gsm\ncontext=x\nallow=gsm\n"
    )
    after, _ = edited(text, lambda d: d.set_codecs("endpoint", "200", ["g722", "ulaw"]))
    assert after.read(MAIN).endswith(
        b"[200](t)\ntype=endpoint\ndisallow = all ; old\nallow = g722,ulaw\ncontext=x\n"
    )
    assert options_of(after, "endpoint", "200")["allow"] == "g722,ulaw"


def test_codecs_from_a_template_get_an_override() -> None:
    after, _ = edited(
        BASE,
        lambda d: d.set_option("endpoint", "102", "allow", ["opus", "alaw"]),
        changes=([], ["disallow=all", "allow=opus,alaw"]),
    )
    assert options_of(after, "endpoint", "102")["allow"] == "opus,alaw"


def test_codec_list_given_as_text_and_empty() -> None:
    after, _ = edited(BASE, lambda d: d.set_option("endpoint", "101", "allow", "gsm, ulaw"))
    assert options_of(after, "endpoint", "101")["allow"] == "gsm,ulaw"
    after, _ = edited(BASE, lambda d: d.set_codecs("endpoint", "101", []))
    assert options_of(after, "endpoint", "101")["allow"] == ""


# -- accumulating options ----------------------------------------------------------------


def test_set_var_list_replaces_the_own_lines_and_keeps_inherited_ones_first() -> None:
    text = "[t](!)\nset_var=T=0\n[200](t)\ntype=endpoint\nset_var=A=1\ncontext=x\nset_var=B=2\n"
    after, _ = edited(text, lambda d: d.set_option("endpoint", "200", "set_var", ["X=1", "Y=2"]))
    assert after.read(MAIN).endswith(b"set_var=X=1\nset_var=Y=2\ncontext=x\n")
    assert options_of(after, "endpoint", "200")["set_var"] == "T=0,X=1,Y=2"


def test_match_and_contact_take_lists() -> None:
    text = "[id]\ntype=identify\nendpoint=x\nmatch=127.0.0.1\n[a]\ntype=aor\n"
    after, _ = edited(
        text, lambda d: d.set_option("identify", "id", "match", ["127.0.0.2", "127.0.0.3"])
    )
    assert after.parse().objects("identify")["id"].options["match"] == "127.0.0.2,127.0.0.3"
    after, _ = edited(text, lambda d: d.set_option("aor", "a", "contact", "sip:x@127.0.0.1"))
    assert options_of(after, "aor", "a")["contact"] == "sip:x@127.0.0.1"


# -- remove_option -----------------------------------------------------------------------


def test_remove_option_removes_own_lines_in_continuations_too() -> None:
    text = "[t](!)\nlanguage=t\n[200](t)\ntype=endpoint\nlanguage=a\n[200](+)\nlanguage=b\n"
    document = Files({"pjsip.conf": text}).load()
    assert document.remove_option("endpoint", "200", "language") is True
    assert document.render(MAIN) == b"[t](!)\nlanguage=t\n[200](t)\ntype=endpoint\n[200](+)\n"
    assert document.get("endpoint", "200").options["language"] == "t"
    assert document.remove_option("endpoint", "200", "language") is False


def test_remove_allow_also_removes_disallow() -> None:
    after, _ = edited(
        "[200]\ntype=endpoint\ndisallow=all\nallow=ulaw\n",
        lambda d: d.remove_option("endpoint", "200", "allow"),
    )
    assert after.read(MAIN) == b"[200]\ntype=endpoint\n"


# -- add_section -------------------------------------------------------------------------


def test_add_section_appends_after_one_blank_line() -> None:
    after, touched = edited(
        BASE,
        lambda d: d.add_section(
            MAIN, "103", templates=["tpl"], options=[("auth", "103")], comment="customer Y"
        ),
    )
    assert after.read(MAIN) == (BASE + "\n; customer Y\n[103](tpl)\nauth = 103\n").encode()
    assert list(touched) == [("endpoint", "103")]


def test_add_section_keeps_crlf_and_ends_a_last_line_without_newline() -> None:
    after, _ = edited(
        "[a]\r\ntype=aor",
        lambda d: d.add_section(MAIN, "b", options=[("type", "aor"), ("max_contacts", "2")]),
    )
    assert after.read(MAIN) == b"[a]\r\ntype=aor\r\n\r\n[b]\r\ntype = aor\r\nmax_contacts = 2\r\n"


def test_added_section_can_be_edited_and_deleted_at_once() -> None:
    files = Files({"pjsip.conf": BASE})
    document = files.load()
    document.add_section(MAIN, "103", templates=["tpl"], options=[("auth", "103")])
    document.add_section(MAIN, "103", options=[("type", "aor")])
    document.set_option("endpoint", "103", "context", "c3")
    document.set_option("aor", "103", "max_contacts", "3")
    document.delete_section("aor", "101")
    after = files.with_changes(document)
    assert document.sections() == after.parse().sections
    assert options_of(after, "endpoint", "103")["context"] == "c3"
    assert options_of(after, "aor", "103")["max_contacts"] == "3"


def test_add_section_to_a_new_file_creates_it() -> None:
    files = Files({"pjsip.conf": BASE})
    document = files.load()
    document.add_section(CONF_DIR / "new.conf", "900", options=[("type", "aor")])
    assert document.changed_files() == {CONF_DIR / "new.conf": b"[900]\ntype = aor\n"}
    assert document.find("aor", "900") is None  # nothing includes it yet


def test_add_section_refuses_duplicates_unknown_templates_and_missing_type() -> None:
    document = Files({"pjsip.conf": BASE}).load()
    with pytest.raises(DuplicateObjectError):
        document.add_section(MAIN, "101", options=[("type", "aor")])
    with pytest.raises(UnknownTemplateError):
        document.add_section(MAIN, "103", templates=["nope"])
    with pytest.raises(InvalidValueError):
        document.add_section(MAIN, "103", options=[("context", "x")])
    with pytest.raises(InvalidNameError):
        document.add_section(MAIN, "bad]name", options=[("type", "aor")])
    assert document.changed_files() == {}


def test_a_thousand_sections_are_added_quickly() -> None:
    document = Files({"pjsip.conf": BASE}).load()
    start = time.perf_counter()
    for number in range(5000, 6000):
        document.add_section(MAIN, str(number), templates=["tpl"], options=[("auth", str(number))])
        document.add_section(MAIN, str(number), options=[("type", "aor"), ("max_contacts", "1")])
    assert time.perf_counter() - start < 2.0
    assert len(document.object_ids("aor")) == 1001


# -- delete_section ----------------------------------------------------------------------


def test_delete_section_removes_continuations_and_the_comment_above() -> None:
    files = Files({"pjsip.conf": BASE})
    after, touched = edited(files, lambda d: d.delete_section("endpoint", "101"))
    assert (
        after.read(MAIN)
        == BASE.replace(
            "[101](tpl)\nauth = 101\ncontext => a   ; customer X\nset_var = A=1\n\n", ""
        )
        .replace("\n[101](+)\nlanguage = de\n", "")
        .encode()
    )
    assert list(touched) == [("endpoint", "101")]


def test_delete_section_keeps_the_comment_of_the_next_section() -> None:
    after, _ = edited(BASE, lambda d: d.delete_section("aor", "101"))
    assert b"set_var = A=1\n\n; about 102\n[102](tpl)" in after.read(MAIN)


def test_delete_last_section_leaves_no_trailing_blank_lines() -> None:
    text = "[a]\ntype=aor\n\n; about b\n[b]\ntype=aor\n"
    after, _ = edited(text, lambda d: d.delete_section("aor", "b"))
    assert after.read(MAIN) == b"[a]\ntype=aor\n"


def test_delete_section_stops_at_an_include() -> None:
    files = Files(
        {
            "pjsip.conf": "[a]\ntype=aor\n\n; the users\n#include u.conf\n",
            "u.conf": "[b]\ntype=aor\n",
        }
    )
    after, _ = edited(files, lambda d: d.delete_section("aor", "a"))
    assert after.read(MAIN) == b"; the users\n#include u.conf\n"


def test_delete_section_refuses_a_section_other_sections_copy() -> None:
    document = Files({"pjsip.conf": "[base]\ntype=aor\n[child](base)\n"}).load()
    with pytest.raises(UnsafeEditError):
        document.delete_section("aor", "base")
    with pytest.raises(UnsafeEditError):
        document.set_option("aor", "base", "max_contacts", "2")
    document.set_option("aor", "child", "max_contacts", "2")


def test_delete_section_refuses_lines_an_include_adds_to_it() -> None:
    files = Files(
        {
            "pjsip.conf": "[a]\ntype=aor\n#include x.conf\nmax_contacts=2\n",
            "x.conf": "[b]\ntype=aor\n",
        }
    )
    with pytest.raises(UnsafeEditError):
        files.load().delete_section("aor", "a")


# -- ensure_include ----------------------------------------------------------------------


def test_ensure_include_adds_the_line_once_and_creates_the_file() -> None:
    files = Files({"pjsip.conf": BASE})
    document = files.load()
    assert document.ensure_include(MAIN, "pjsip_ispbx.conf", "managed by ISPBX Manager") is True
    assert document.ensure_include(MAIN, "pjsip_ispbx.conf", "managed by ISPBX Manager") is False
    document.add_section(CONF_DIR / "pjsip_ispbx.conf", "700", templates=["tpl"])
    changed = document.changed_files()
    assert (
        changed[MAIN]
        == (BASE + "\n; managed by ISPBX Manager\n#include pjsip_ispbx.conf\n").encode()
    )
    assert changed[CONF_DIR / "pjsip_ispbx.conf"] == b"[700](tpl)\n"
    assert options_of(files.with_changes(document), "endpoint", "700")["context"] == "from-tpl"
    assert document.get("endpoint", "700").file == CONF_DIR / "pjsip_ispbx.conf"


def test_ensure_include_sees_an_existing_glob_include() -> None:
    files = Files({"pjsip.conf": "#include pjsip.d/*.conf\n", "pjsip.d/a.conf": "[a]\ntype=aor\n"})
    document = files.load()
    assert document.ensure_include(MAIN, "pjsip.d/b.conf", "x") is False
    assert list(document.changed_files()) == [CONF_DIR / "pjsip.d/b.conf"]
    with pytest.raises(InvalidNameError):
        document.ensure_include(MAIN, "../etc/passwd", "x")


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda d: d.set_option("endpoint", "999", "context", "x"), UnknownObjectError),
        (lambda d: d.set_option("aor", "102", "context", "x"), UnknownObjectError),
        (lambda d: d.set_option("endpoint", "tpl", "context", "x"), TemplateOnlyError),
        (lambda d: d.delete_section("endpoint", "tpl"), TemplateOnlyError),
        (lambda d: d.set_option("endpoint", "101", "con text", "x"), InvalidNameError),
        (lambda d: d.set_option("endpoint", "101", "type", "aor"), InvalidNameError),
        (lambda d: d.remove_option("endpoint", "101", "type"), InvalidNameError),
        (lambda d: d.set_option("endpoint", "101", "disallow", "all"), InvalidNameError),
        (lambda d: d.set_option("endpoint", "101", "context", "a\nb"), InvalidValueError),
        (lambda d: d.set_option("endpoint", "101", "context", "a\rb"), InvalidValueError),
        (lambda d: d.set_option("endpoint", "101", "context", "a\0b"), InvalidValueError),
        (lambda d: d.set_option("endpoint", "101", "context", " a"), InvalidValueError),
        (lambda d: d.set_option("endpoint", "101", "context", "a\t"), InvalidValueError),
        (lambda d: d.set_option("endpoint", "101", "context", "\udcff"), InvalidValueError),
        (lambda d: d.set_option("endpoint", "101", "context", ["a", "b"]), InvalidValueError),
        (lambda d: d.set_option("endpoint", "101", "context", "x" * 9000), InvalidValueError),
        (lambda d: d.set_codecs("endpoint", "101", ["ulaw", "ULAW"]), InvalidValueError),
        (lambda d: d.set_codecs("endpoint", "101", ["ulaw:20"]), InvalidValueError),
        (lambda d: d.render(CONF_DIR / "nope.conf"), UnknownFileError),
    ],
)
def test_refusals_raise_and_change_nothing(edit: Edit, error: type[DocumentError]) -> None:
    document = Files({"pjsip.conf": BASE}).load()
    with pytest.raises(error):
        edit(document)
    assert document.changed_files() == {}


def test_lines_inside_block_comments_are_not_edited() -> None:
    text = "[200]\ntype=endpoint\ncontext=a ;-- opens\nlanguage=hidden\n--;\n"
    document = Files({"pjsip.conf": text}).load()
    with pytest.raises(UnsafeEditError):
        document.set_option("endpoint", "200", "context", "b")
    with pytest.raises(UnsafeEditError):
        document.set_option("endpoint", "200", "language", "de")  # would land in the comment
    assert document.changed_files() == {}


def test_a_file_included_twice_is_not_edited() -> None:
    files = Files(
        {
            "pjsip.conf": (
                "[200]\ntype=endpoint\n#include c.conf\n[300]\ntype=endpoint\n#include c.conf\n"
            ),
            "c.conf": "context=x\n",
        }
    )
    document = files.load()
    with pytest.raises(UnsafeEditError):
        document.set_option("endpoint", "200", "context", "y")


def test_load_rejects_what_the_reader_rejects_as_a_whole() -> None:
    with pytest.raises(ConfigRejectedError) as caught:
        Files({"pjsip.conf": "[a]\ntype=aor\n[b](missing)\n"}).load()
    assert (caught.value.path, caught.value.line) == (MAIN, 3)


def test_get_reports_own_lines_and_headers() -> None:
    found = Files({"pjsip.conf": BASE}).load().get("endpoint", "101")
    assert found.templates == ("tpl",)
    assert found.headers == ((MAIN, 9), (MAIN, 23))
    assert [(o.option, o.value, o.line) for o in found.own] == [
        ("auth", "101", 10),
        ("context", "a", 11),
        ("set_var", "A=1", 12),
        ("language", "de", 24),
    ]
    assert found.options["context"] == "a"
    assert found.options["allow"] == "ulaw"


def test_options_a_later_filtered_continuation_looks_at_are_not_edited() -> None:
    text = "[101]\ntype=aor\ncontext=x\n[101]\ntype=endpoint\n[101](+context=x)\nmax_contacts=2\n"
    document = Files({"pjsip.conf": text}).load()
    with pytest.raises(UnsafeEditError):
        document.set_option("aor", "101", "context", "y")  # the (+) would move to the endpoint
    document.set_option("aor", "101", "qualify_frequency", "30")  # not looked at
