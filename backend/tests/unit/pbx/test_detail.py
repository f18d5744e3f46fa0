from __future__ import annotations

import pytest

from ispbx.pbx.detail import DetailConfigError, load_detail_ini, parse_detail_ini
from ispbx.settings import BUNDLED_DETAIL_INI


def test_bundled_ini_has_the_shipped_defaults() -> None:
    fields = load_detail_ini(BUNDLED_DETAIL_INI).fields
    assert fields["EndpointList"] == (
        "ObjectType",
        "ObjectName",
        "DeviceState",
        "Transport",
        "Aor",
        "Auths",
    )
    assert fields["AuthDetail"] == ("ObjectName", "Username", "AuthType", "Password")
    assert fields["ContactStatusDetail"][0] == "URI"


def test_select_lowercases_keys_and_leaves_out_missing_fields() -> None:
    fields = parse_detail_ini("[AorDetail]\nfields = ObjectName, MaxContacts, EndpointName\n")
    selected = fields.select("AorDetail", {"ObjectName": "101", "MaxContacts": "1", "X": "y"})
    assert selected == {"objectname": "101", "maxcontacts": "1"}


def test_select_keeps_ini_order() -> None:
    fields = parse_detail_ini("[EndpointDetail]\nfields = Context, ObjectName\n")
    message = {"ObjectName": "101", "Context": "c"}
    assert list(fields.select("EndpointDetail", message)) == ["context", "objectname"]


def test_field_names_are_case_sensitive_as_on_the_wire() -> None:
    fields = parse_detail_ini("[EndpointDetail]\nfields = callerid\n")
    assert fields.select("EndpointDetail", {"Callerid": "x"}) == {}


def test_unknown_section_is_refused_with_its_name() -> None:
    with pytest.raises(DetailConfigError, match=r"unknown section \[EndpointDetails\]"):
        parse_detail_ini("[EndpointDetails]\nfields = ObjectName\n")


def test_unreadable_file_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DetailConfigError, match="cannot read"):
        load_detail_ini(tmp_path / "missing.ini")
