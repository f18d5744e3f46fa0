"""Option values the way Asterisk shows them (AMI PJSIPShowEndpoint, ``pjsip show endpoint``).

Asterisk does not echo the file: it parses each value into its own representation and prints that.
``callerid = Bob <(555) 123-4567>`` is shown as ``"Bob" <5551234567>``, ``direct_media = yes`` as
``true``, ``rtp_timeout = 0x10`` as ``16``, ``timers = forced`` as ``always``. Comparing what was
written with what Asterisk reports back only works after the same conversion; these functions do
it, and the integration tests compare them with the lab's AMI for a table of inputs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping

from ispbx.pjsip import cparse
from ispbx.pjsip.options import ALL_CODECS, DSCP, OptionSpec, OptionTable, codec_items

NAME_BYTES = 79  # cid_name[80], cid_num[80] in caller_id_handler
NAME_ESCAPE_BYTES = 128  # name_buf[128] in ast_callerid_merge
PLAIN_NUMBER_BYTES = 255  # tmp[256] in ast_callerid_parse
BLANK = bytes(range(33))  # ast_strip() drops bytes below 33 at both ends
PHONE_CHARS = frozenset(b"0123456789*#+")
UNKNOWN_CALLERID = "<unknown>"
NO_CODECS = "(nothing)"
# ast_named_caller_presentation(): presentation number -> name.
PRESENTATIONS = {
    0x00: "allowed_not_screened",
    0x01: "allowed_passed_screen",
    0x02: "allowed_failed_screen",
    0x03: "allowed",
    0x20: "prohib_not_screened",
    0x21: "prohib_passed_screen",
    0x22: "prohib_failed_screen",
    0x23: "prohib",
    0x40: "unavailable",
    0x41: "unavailable",
    0x42: "unavailable",
    0x43: "unavailable",
}
DTLS_VERIFY = {"no": "No", "fingerprint": "Fingerprint", "certificate": "Certificate", "yes": "Yes"}
BOOL_SHOWN = {"yes_no": ("yes", "no"), "Yes_No": ("Yes", "No")}


def ami_header(option: str) -> str:
    """The AMI header of an option: callerid -> Callerid, outbound_auth -> OutboundAuth."""
    return "".join(part[:1].upper() + part[1:] for part in option.split("_"))


# -- callerid ------------------------------------------------------------------------------------


def asterisk_callerid(raw: str) -> str:
    """``callerid = raw`` as Asterisk shows it (ast_callerid_split, then ast_callerid_merge).

    Outer quotes go, backslash escapes are undone, the number loses spaces, parentheses, dashes
    and dots (except inside [..] and a final dot), name and number are cut at 79 bytes, and the
    result is ``"name" <number>``, ``name``, ``number`` or ``<unknown>``; a name with more than a
    few quotes or backslashes gets its escaped form cut short, as Asterisk's buffer is.
    """
    name, number = split_callerid(raw)
    return merge_callerid(name, number)


def split_callerid(raw: str) -> tuple[str | None, str | None]:
    """(name, number) as caller_id_handler stores them; None when not set."""
    name, number = _parse_callerid(raw.encode("utf-8", "surrogateescape"))
    name_bytes = name[:NAME_BYTES] if name else b""
    number_bytes = _shrink_number(number)[:NAME_BYTES] if number is not None else b""
    return _text(name_bytes) or None, _text(number_bytes) or None


def merge_callerid(name: str | None, number: str | None) -> str:
    if name and number:
        escaped = _escape_quoted(name.encode("utf-8", "surrogateescape"))
        size = 10 + len(name.encode("utf-8", "surrogateescape")) + len(number.encode()) + 1
        merged = b'"' + escaped + b'" <' + number.encode("utf-8", "surrogateescape") + b">"
        return _text(merged[: size - 1])
    return name or number or UNKNOWN_CALLERID


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _strip(data: bytes) -> bytes:
    return data.strip(BLANK)


def _strip_quoted(data: bytes) -> bytes:
    data = _strip(data)
    if data[:1] == b'"' and data[-1:] == b'"':
        return data[1:-1]
    return data


def _parse_callerid(data: bytes) -> tuple[bytes | None, bytes | None]:
    """ast_callerid_parse: (name, location) before the number is shrunk."""
    stripped = _strip(data)
    instr = _strip_quoted(stripped)
    quotes_stripped = instr != stripped
    name: bytes | None
    location: bytes | None
    bracket = instr.rfind(b"<")
    if bracket >= 0:
        location = instr[bracket + 1 :]
        close = location.rfind(b">")
        if close >= 0:
            location = location[:close]
        name = _strip_quoted(instr[:bracket])
    else:
        shrunk = _shrink_number(instr[:PLAIN_NUMBER_BYTES])
        if not quotes_stripped and shrunk and all(byte in PHONE_CHARS for byte in shrunk):
            name, location = None, shrunk
        else:
            name, location = _strip_quoted(instr), None
    return (None if name is None else _unescape(name)), location


def _unescape(data: bytes) -> bytes:
    out = bytearray()
    index = 0
    while index < len(data):
        if data[index] == ord("\\"):
            index += 1
            if index >= len(data):
                break
        out.append(data[index])
        index += 1
    return bytes(out)


def _shrink_number(data: bytes) -> bytes:
    """ast_shrink_phone_number: drop ( ) and spaces, '-' outside [..], '.' unless last."""
    out = bytearray()
    bracketed = 0
    for index, byte in enumerate(data):
        char = chr(byte)
        if char == "[":
            bracketed += 1
            out.append(byte)
        elif char == "]":
            bracketed -= 1
            out.append(byte)
        elif char == "-":
            if bracketed:
                out.append(byte)
        elif char == ".":
            if index == len(data) - 1:
                out.append(byte)
        elif char not in "( )":
            out.append(byte)
    return bytes(out)


def _escape_quoted(data: bytes, size: int = NAME_ESCAPE_BYTES) -> bytes:
    """ast_escape_quoted: backslash before '"', '\\' and control bytes; output under `size`."""
    out = bytearray()
    for byte in data:
        if len(out) >= size - 1:
            break
        plain = byte in b"\t\v !" or 0x23 <= byte <= 0x5B or 0x5D <= byte <= 0x7E or byte > 0x7F
        if plain:
            out.append(byte)
        elif len(out) >= size - 2:
            break
        else:
            out += b"\\" + bytes([byte])
    return bytes(out)


# -- codecs and set_var --------------------------------------------------------------------------


def resolve_codecs(lines: Iterable[tuple[str, str]], table: OptionTable | None = None) -> list[str]:
    """The endpoint's codec list after its allow/disallow lines, in order (other keys ignored).

    ``all`` is every codec Asterisk knows (table.codecs_in_all, in Asterisk's order), so
    ``allow=all`` then ``disallow=ulaw`` leaves everything but ulaw; ``(a|b)``, Asterisk's own
    printed form, first clears (allow) or fills (disallow) the list.
    """
    table = table or OptionTable.load()
    codecs: list[str] = []
    for option, value in lines:
        key = option.lower()
        if key not in ("allow", "disallow") or (key == "disallow" and not value):
            continue
        allowing = key == "allow"
        parenthesised, items = codec_items(value)
        if parenthesised:
            _apply(codecs, table, allowing=not allowing, name=ALL_CODECS)
        for inverted, name, _framing in items:
            _apply(codecs, table, allowing=allowing != inverted, name=name)
    return codecs


def _apply(codecs: list[str], table: OptionTable, *, allowing: bool, name: str) -> None:
    if name.lower() == ALL_CODECS:
        if allowing:
            codecs.extend(c for c in table.codecs_in_all if c not in codecs)
        else:
            codecs[:] = [c for c in codecs if c not in table.codecs_in_all]
        return
    codec = table.codec(name)
    if codec is None:
        return
    if allowing and codec not in codecs:
        codecs.append(codec)
    elif not allowing and codec in codecs:
        codecs.remove(codec)


def shown_codecs(lines: Iterable[tuple[str, str]], table: OptionTable | None = None) -> str:
    """The ``Allow`` value of PJSIPShowEndpoint: ``(ulaw|alaw)``, or ``(nothing)``."""
    codecs = resolve_codecs(lines, table)
    return f"({'|'.join(codecs)})" if codecs else NO_CODECS


def shown_set_var(values: Iterable[str]) -> str:
    """``SetVar`` after several set_var lines: a later NAME replaces an earlier one in place."""
    variables: dict[str, str] = {}
    for value in values:
        name, equals, content = value.partition("=")
        if value and equals:
            variables[name] = content
    return ",".join(f"{name}={content}" for name, content in variables.items())


# -- one value -----------------------------------------------------------------------------------


def shown_value(
    obj_type: str, option: str, raw: str | None, table: OptionTable | None = None
) -> str:
    """How Asterisk shows ``option = raw`` of an object of type `obj_type` (raw None: unset).

    For options whose value builds up over several lines use shown_codecs (allow/disallow) and
    shown_set_var (set_var). A value Asterisk refuses has no shown form; what comes back then is
    a best effort.
    """
    table = table or OptionTable.load()
    spec = table.option(obj_type, option)
    if spec is None:
        return raw or ""
    if spec.shown_fixed is not None:
        return spec.shown_fixed
    value = raw if raw is not None else (spec.default or "")
    if spec.kind == "codecs":
        return shown_codecs([(spec.name, value)] if raw is not None else [], table)
    return _SHOWN.get(spec.kind, _shown_string)(spec, value)


def _shown_string(spec: OptionSpec, value: str) -> str:
    if spec.shown == "address":
        return _numeric_address(value) or value
    if spec.name == "sdp_owner" and (not value or any(c.isspace() for c in value)):
        return "-"
    if spec.name == "sdp_session" and not value.strip():
        return "-"
    return value


def _numeric_address(value: str) -> str | None:
    """An address as getaddrinfo(AI_NUMERICHOST) reads it, printed back; None for host names.

    IPv4 parts follow inet_aton: 1 to 4 numbers, each decimal, octal (leading 0) or hex (0x).
    """
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    parts = value.split(".")
    numbers = [cparse.parse_c_integer(part, signed=False) for part in parts]
    if not 1 <= len(parts) <= 4 or any(n is None for n in numbers):
        return None
    *head, tail = [n for n in numbers if n is not None]
    if any(n > 255 for n in head) or tail >= 256 ** (4 - len(head)):
        return None
    packed = sum(n << (8 * (3 - i)) for i, n in enumerate(head)) + tail
    return str(ipaddress.IPv4Address(packed))


def _shown_bool(spec: OptionSpec, value: str) -> str:
    yes, no = BOOL_SHOWN.get(spec.shown or "", ("true", "false"))
    return yes if cparse.ast_true(value) else no


def _shown_integer(spec: OptionSpec, value: str) -> str:
    if spec.parse == "scanf":
        number = cparse.scanf_int(value)
    else:
        number = cparse.parse_c_integer(value, signed=spec.signed)
    if number is None:
        return value
    return str(number if spec.signed else cparse.c_uint(number))


def _shown_number(spec: OptionSpec, value: str) -> str:
    number = cparse.parse_c_double(value)
    return value if number is None else f"{number:f}"


def _shown_enum(spec: OptionSpec, value: str) -> str:
    if spec.shown == "dtls_verify":
        return DTLS_VERIFY.get(value.lower(), value)
    if spec.name == "callerid_privacy":
        return _shown_presentation(value)
    found = spec.enum_value(value)
    if found is None:
        return value if not spec.lenient else (spec.enum_value(spec.default or "") or "")
    return found


def _shown_presentation(value: str) -> str:
    named = value.lower()
    if named in PRESENTATIONS.values():
        return named
    number = cparse.scanf_int(value)
    return PRESENTATIONS.get(number, "unknown") if number is not None else value


def _shown_enum_list(spec: OptionSpec, value: str) -> str:
    seen: list[str] = []
    for item in value.split(","):
        found = spec.enum_value(item.strip(cparse.C_SPACE))
        if found is not None and found not in seen:
            seen.append(found)
    return ",".join(seen)


def _shown_reference(spec: OptionSpec, value: str) -> str:
    if not spec.is_list or spec.shown == "raw":
        return value
    return ",".join(i.strip(cparse.C_SPACE) for i in value.split(",") if i.strip(cparse.C_SPACE))


def _shown_tos(spec: OptionSpec, value: str) -> str:
    number = cparse.scanf_i(value)
    if number is not None:
        return str(number & 0xFF)
    named = DSCP.get(value.lower())
    return str(named << 2) if named is not None else value


def _shown_group(spec: OptionSpec, value: str) -> str:
    groups: set[int] = set()
    for piece in value.split(","):
        pair = piece.split("-", 1)
        first = cparse.scanf_int(pair[0])
        if first is None:
            continue
        last = cparse.scanf_int(pair[1]) if len(pair) == 2 else first
        groups.update(
            n for n in range(first, (last if last is not None else first) + 1) if 0 <= n <= 63
        )
    return ", ".join(str(n) for n in sorted(groups))


def _shown_codec_prefs(spec: OptionSpec, value: str) -> str:
    chosen: dict[str, str] = {}
    for text in (spec.default or "", value):
        for piece in text.split(","):
            tokens = [t for t in piece.replace(":", " ").split(" ") if t]
            if len(tokens) >= 2 and tokens[0] in spec.params:
                chosen[tokens[0]] = tokens[1]
    return ", ".join(f"{name}:{chosen[name]}" for name in spec.params if name in chosen)


def _shown_callerid(spec: OptionSpec, value: str) -> str:
    return asterisk_callerid(value)


def _shown_set_var(spec: OptionSpec, value: str) -> str:
    return shown_set_var([value])


_SHOWN: Mapping[str, Callable[[OptionSpec, str], str]] = {
    "bool": _shown_bool,
    "integer": _shown_integer,
    "number": _shown_number,
    "enum": _shown_enum,
    "enum_list": _shown_enum_list,
    "reference": _shown_reference,
    "callerid": _shown_callerid,
    "tos": _shown_tos,
    "group": _shown_group,
    "codec_prefs": _shown_codec_prefs,
    "set_var": _shown_set_var,
}
