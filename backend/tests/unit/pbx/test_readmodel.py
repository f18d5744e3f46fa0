from __future__ import annotations

import pytest

from ispbx.pbx.readmodel import from_config, natural_key, valid_extension, wire_name


def test_natural_sort_puts_numbers_in_numeric_order_then_names() -> None:
    names = ["100", "10", "2", "alice.smith", "trunk-out", "1a", "1b", "Bob"]
    assert sorted(names, key=natural_key) == [
        "1a", "1b", "2", "10", "100", "alice.smith", "Bob", "trunk-out",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("option", "header"),
    [
        ("callerid", "Callerid"),
        ("outbound_auth", "OutboundAuth"),
        ("direct_media", "DirectMedia"),
        ("100rel", "100rel"),
        ("max_contacts", "MaxContacts"),
    ],
)
def test_wire_name_matches_ami_spelling(option: str, header: str) -> None:
    assert wire_name(option) == header


def test_from_config_gives_ami_shaped_object_without_type() -> None:
    obj = from_config({"type": "auth", "auth_type": "userpass", "username": "101"}, "auth", "101")
    assert obj == {"ObjectType": "auth", "ObjectName": "101", "AuthType": "userpass",
                   "Username": "101"}  # fmt: skip


@pytest.mark.parametrize("name", ["101", "alice.smith", "trunk-out", "a" * 80, "Jörg", "1+2"])
def test_valid_extensions_are_accepted(name: str) -> None:
    assert valid_extension(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a" * 81,
        "10 1",
        "101\r\nAction: DBPut",
        "a/b",
        "..\\x",
        "x\x00",
        "x\t",
        "x\u2028",
        "\x7f",
    ],
)
def test_hostile_extensions_are_refused(name: str) -> None:
    assert not valid_extension(name)
