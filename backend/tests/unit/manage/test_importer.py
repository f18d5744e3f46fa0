"""CSV and JSON-lines import rows, and the CSV export in the same columns."""

from __future__ import annotations

import pytest

from ispbx.manage.importer import ImportFormatError, export_csv, parse_csv, parse_jsonl


def test_rows_become_create_bodies_with_lists_and_free_options() -> None:
    text = (
        "extension,password,context,codecs,templates,max_contacts,endpoint.direct_media\n"
        "201,,sales,g722|ulaw,endpoint-basic,2,no\n"
        '202,s3cret-202,support,"alaw,ulaw",,,\n'
    )
    first, second = parse_csv(text)
    assert first.ok and second.ok
    assert first.request is not None and second.request is not None
    assert first.request.password is None  # empty: generated later
    assert first.request.codecs == ["g722", "ulaw"]
    assert first.request.templates == ["endpoint-basic"]
    assert first.request.max_contacts == 2
    assert first.request.options.endpoint == {"direct_media": "no"}
    assert (second.line, second.request.codecs) == (3, ["alaw", "ulaw"])


def test_every_bad_row_is_reported_with_its_line() -> None:
    text = "extension,max_contacts\n301,1\nbad name,1\n303,zero\n304\n"
    rows = parse_csv(text)
    assert [r.ok for r in rows] == [True, False, False, False]
    assert [r.line for r in rows if not r.ok] == [3, 4, 5]
    assert "extension" in rows[1].errors[0]
    assert "max_contacts" in rows[2].errors[0]
    assert "cells" in rows[3].errors[0]


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "empty"), ("password\nx\n", "no 'extension'"), ("extension,colour\n1,red\n", "colour")],
)
def test_an_upload_that_cannot_be_read_is_refused_as_a_whole(text: str, words: str) -> None:
    with pytest.raises(ImportFormatError, match=words):
        parse_csv(text)


def test_json_lines_are_create_bodies() -> None:
    text = '{"extension": "401", "codecs": ["ulaw"]}\n\nnot json\n["list"]\n'
    rows = parse_jsonl(text)
    assert [(r.line, r.ok) for r in rows] == [(1, True), (3, False), (4, False)]


def test_export_is_the_import_format_and_defuses_formulas() -> None:
    text = export_csv([{"extension": "101", "callerid": "=HYPERLINK(1)", "codecs": "g722|ulaw"}])
    assert text.splitlines()[0].startswith("extension,password,context,callerid,codecs")
    assert "'=HYPERLINK(1)" in text
    (row,) = parse_csv(text)
    assert row.request is not None and row.request.codecs == ["g722", "ulaw"]
