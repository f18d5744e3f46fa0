"""How Asterisk's C code reads numbers and words out of option values.

Asterisk parses integers with ``strtol``/``strtoul`` in base 0 (``0x10`` is 16, ``010`` is 8,
``08`` is an error), doubles with ``strtod``, some values with ``sscanf`` (only a leading number
counts), and booleans with ``ast_true``/``ast_false``. These functions answer the same way, in
Python, so that a value the service accepts is a value Asterisk accepts.
"""

from __future__ import annotations

import functools
import math
import re

C_SPACE = " \t\n\v\f\r"
TRUE_WORDS = frozenset({"yes", "true", "y", "t", "1", "on"})
FALSE_WORDS = frozenset({"no", "false", "n", "f", "0", "off"})
UINT32_MAX = 2**32 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ULONG_MAX = 2**64 - 1

_DECIMAL_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_HEX_FLOAT = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?"
)
_SPECIAL_FLOAT = re.compile(r"[+-]?(?:inf|infinity|nan(?:\([0-9A-Za-z_]*\))?)", re.IGNORECASE)
_LEADING_INT = re.compile(r"[ \t\n\v\f\r]*([+-]?)(\d+)")


def ast_true(value: str) -> bool:
    """ast_true(): yes, true, y, t, 1, on (any case)."""
    return value.lower() in TRUE_WORDS


def ast_false(value: str) -> bool:
    """ast_false(): no, false, n, f, 0, off (any case)."""
    return value.lower() in FALSE_WORDS


def _strtol_digits(text: str) -> tuple[int, str] | None:
    """The sign-less part of strtol(base 0) consuming all of `text`: (value, base) or None."""
    if text[:2].lower() == "0x" and len(text) > 2:
        digits, base = text[2:], 16
    elif text.startswith("0") and len(text) > 1:
        digits, base = text[1:], 8
    else:
        digits, base = text, 10
    allowed = {16: "0123456789abcdefABCDEF", 8: "01234567", 10: "0123456789"}[base]
    if not digits or any(char not in allowed for char in digits):
        return None
    return int(digits, base), str(base)


@functools.lru_cache(maxsize=4096)
def parse_c_integer(value: str, *, signed: bool) -> int | None:
    """ast_parse_arg(PARSE_INT32 / PARSE_UINT32): the whole value must be a number in base 0.

    Unsigned values refuse a leading '-' (strtoul would negate it silently); both refuse an empty
    value, trailing text and values beyond 32 bits.
    """
    text = value.lstrip(C_SPACE)
    if not text:
        return None
    sign = 1
    if text[0] in "+-":
        if text[0] == "-":
            if not signed:
                return None
            sign = -1
        text = text[1:]
    parsed = _strtol_digits(text)
    if parsed is None:
        return None
    number = sign * parsed[0]
    if signed:
        return number if INT32_MIN <= number <= INT32_MAX else None
    return number if number <= UINT32_MAX else None


def parse_c_double(value: str) -> float | None:
    """ast_parse_arg(PARSE_DOUBLE): strtod over the whole value; overflow is an error."""
    text = value.lstrip(C_SPACE)
    if not text:
        return None
    if _SPECIAL_FLOAT.fullmatch(text):
        lowered = text.lower().lstrip("+-")
        number = math.inf if lowered.startswith("inf") else math.nan
        return -number if text.startswith("-") else number
    if _DECIMAL_FLOAT.fullmatch(text):
        number = float(text)
    elif _HEX_FLOAT.fullmatch(text):
        number = _hex_float(text)
    else:
        return None
    return None if math.isinf(number) else number


def _hex_float(text: str) -> float:
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")[2:]
    if "p" not in body.lower():
        body += "p0"
    try:
        return sign * float.fromhex("0x" + body)
    except OverflowError:
        return math.inf


def scanf_int(value: str) -> int | None:
    """sscanf("%d"/"%u"): a leading (optionally signed) decimal number; the rest is ignored."""
    match = _LEADING_INT.match(value)
    if match is None:
        return None
    number = int(match.group(2)[:30])
    return -number if match.group(1) == "-" else number


def scanf_i(value: str) -> int | None:
    """sscanf("%i"): like %d but 0x.. is hex and 0.. is octal; the rest is ignored."""
    match = re.match(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)", value)
    if match is None:
        return None
    digits = match.group(2)
    if digits[:2].lower() == "0x":
        number = int(digits[2:], 16)
    elif digits.startswith("0"):
        number = int(digits, 8)
    else:
        number = int(digits)
    return -number if match.group(1) == "-" else number


def c_uint(number: int) -> int:
    """An int as C's `unsigned int` holds it (what `%u` prints)."""
    return number & UINT32_MAX
