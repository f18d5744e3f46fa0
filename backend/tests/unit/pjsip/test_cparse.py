"""C-style number and word parsing, as Asterisk reads option values."""

from __future__ import annotations

import math

import pytest

from ispbx.pjsip import cparse


@pytest.mark.parametrize(
    ("text", "signed", "number"),
    [
        ("10", False, 10),
        (" 7", False, 7),
        ("+5", False, 5),
        ("0x10", False, 16),
        ("010", False, 8),
        ("0", False, 0),
        ("4294967295", False, 4294967295),
        ("-5", True, -5),
        ("-2147483648", True, -2147483648),
        ("", False, None),
        ("-1", False, None),
        ("08", False, None),
        ("0x", False, None),
        ("1.5", False, None),
        ("10abc", False, None),
        ("4294967296", False, None),
        ("2147483648", True, None),
        ("+", False, None),
    ],
)
def test_parse_c_integer(text: str, signed: bool, number: int | None) -> None:
    assert cparse.parse_c_integer(text, signed=signed) == number


@pytest.mark.parametrize(
    ("text", "number"),
    [("3.0", 3.0), ("1e1", 10.0), (".5", 0.5), ("-1", -1.0), ("0x1p3", 8.0), ("inf", math.inf)],
)
def test_parse_c_double(text: str, number: float) -> None:
    assert cparse.parse_c_double(text) == number


@pytest.mark.parametrize("text", ["", "abc", "1e999", "1_0", "3.0 "])
def test_parse_c_double_refuses(text: str) -> None:
    assert cparse.parse_c_double(text) is None


def test_nan_is_a_number_to_strtod() -> None:
    number = cparse.parse_c_double("nan")
    assert number is not None
    assert math.isnan(number)


@pytest.mark.parametrize(("text", "number"), [("5", 5), ("5abc", 5), (" -3x", -3), ("abc", None)])
def test_scanf_int(text: str, number: int | None) -> None:
    assert cparse.scanf_int(text) == number


@pytest.mark.parametrize(("text", "number"), [("0x2e", 46), ("010", 8), ("46", 46), ("ef", None)])
def test_scanf_i(text: str, number: int | None) -> None:
    assert cparse.scanf_i(text) == number


@pytest.mark.parametrize("word", ["yes", "TRUE", "y", "t", "1", "On"])
def test_ast_true(word: str) -> None:
    assert cparse.ast_true(word)
    assert not cparse.ast_false(word)


@pytest.mark.parametrize("word", ["no", "False", "n", "f", "0", "OFF"])
def test_ast_false(word: str) -> None:
    assert cparse.ast_false(word)
    assert not cparse.ast_true(word)


def test_other_words_are_neither() -> None:
    assert not cparse.ast_true("maybe")
    assert not cparse.ast_false("")
