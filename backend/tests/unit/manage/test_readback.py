"""Comparing what a change meant with what Asterisk reports after the reload."""

from __future__ import annotations

from ispbx.manage.readback import Mismatch, compare

ITEMS = [
    {"Event": "EndpointDetail", "ObjectName": "101", "Context": "sales", "Allow": "(g722|ulaw)"},
    {"Event": "AuthDetail", "ObjectName": "101", "Password": "s3cret", "Username": "101"},
    {"Event": "AorDetail", "ObjectName": "101", "MaxContacts": "2"},
]


def test_matching_values_in_asterisks_spelling_give_no_mismatch() -> None:
    expected = {
        ("endpoint", "101"): {"context": "sales", "allow": "(g722|ulaw)"},
        ("auth", "101"): {"password": "s3cret"},
        ("aor", "101"): {"max_contacts": "2"},
    }
    assert compare(expected, ITEMS) == []


def test_a_value_asterisk_did_not_take_is_reported() -> None:
    (mismatch,) = compare({("endpoint", "101"): {"context": "support"}}, ITEMS)
    assert mismatch == Mismatch("endpoint", "101", "context", "support", "sales")
    assert "context is 'sales' in Asterisk, not 'support'" in mismatch.describe()


def test_a_missing_object_and_one_that_should_be_gone_are_reported() -> None:
    missing = compare({("aor", "102"): {}}, ITEMS)
    assert [m.describe() for m in missing] == ["aor 102 is missing in Asterisk after the reload"]
    still = compare({("endpoint", "101"): None}, ITEMS)
    assert [m.describe() for m in still] == [
        "endpoint 101 still exists in Asterisk after the reload"
    ]
    assert compare({("endpoint", "101"): None}, None) == []
