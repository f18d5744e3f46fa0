"""Values as Asterisk shows them. The expected strings are what the lab's AMI returned for the
same input (tests/integration/test_asterisk_rules.py checks the same tables against Asterisk)."""

from __future__ import annotations

import pytest

from ispbx.pjsip.shown import (
    ami_header,
    asterisk_callerid,
    resolve_codecs,
    shown_codecs,
    shown_set_var,
    shown_value,
    split_callerid,
)

CALLERIDS = [
    ('"Bob \\"B\\"" <(555) 123-4567>', '"Bob \\"B\\"" <5551234567>'),
    ('"Bob" <101>', '"Bob" <101>'),
    ("Bob <101>", '"Bob" <101>'),
    ('"Bob"', "Bob"),
    ("Bob", "Bob"),
    ("101", "101"),
    ('"101"', "101"),
    ("(555) 123-4567", "5551234567"),
    ("555.123.4567", "5551234567"),
    ("<101>", "101"),
    ("", "<unknown>"),
    ("Bob <101", '"Bob" <101>'),
    ('"Bob <101>"', '"Bob" <101>'),
    ("Jörg Müller <102>", '"Jörg Müller" <102>'),
    ("A\\\\B <1>", '"A\\\\B" <1>'),
    ('"A, B" <1-2-3>', '"A, B" <123>'),
    ("x" * 90 + " <1>", '"' + "x" * 79 + '" <1>'),
    ('"' + 'q"' * 10 + '" <1>', '"' + 'q\\"' * 10),
    ("Bob <[1-2]>", '"Bob" <[1-2]>'),
    ('"  Bob  "   <  101  >', '"  Bob  " <101>'),
    ("Bob <1.>", '"Bob" <1.>'),
    ('"Bob" 101', '"Bob" 101'),
    ("Bob\t<1>", '"Bob" <1>'),
    ("+1 (555) 000", "+1555000"),
]


@pytest.mark.parametrize(("raw", "shown"), CALLERIDS)
def test_callerid_as_asterisk_parses_it(raw: str, shown: str) -> None:
    assert asterisk_callerid(raw) == shown


def test_split_callerid_gives_name_and_number() -> None:
    assert split_callerid('"Bob \\"B\\"" <(555) 123-4567>') == ('Bob "B"', "5551234567")
    assert split_callerid("") == (None, None)


@pytest.mark.parametrize(
    ("option", "raw", "shown"),
    [
        ("direct_media", "yes", "true"),
        ("direct_media", "maybe", "false"),
        ("direct_media", "on", "true"),
        ("trust_connected_line", "no", "no"),
        ("send_connected_line", "1", "yes"),
        ("webrtc", "no", "no"),
        ("dtls_auto_generate_cert", "on", "Yes"),
        ("rtp_timeout", "0x10", "16"),
        ("rtp_timeout", "010", "8"),
        ("rtp_timeout", "+5", "5"),
        ("dtls_rekey", "0x10", "0"),
        ("100rel", "true", "yes"),
        ("100rel", "REQUIRED", "required"),
        ("timers", "forced", "always"),
        ("timers", "0", "no"),
        ("dtmf_mode", "RFC4733", "rfc4733"),
        ("direct_media_method", "reinvite", "invite"),
        ("connected_line_method", "UPDATE", "update"),
        ("callerid_privacy", "allowed", "allowed"),
        ("callerid_privacy", "5", "unknown"),
        ("callerid_privacy", "PROHIB", "prohib"),
        ("identify_by", "USERNAME,ip,username", "username,ip"),
        ("dtls_verify", "fingerprint", "Fingerprint"),
        ("dtls_fingerprint", "sha-1", "SHA-1"),
        ("tos_audio", "ef", "184"),
        ("tos_audio", "0x2e", "46"),
        ("call_group", "1,3-4,7", "1, 3, 4, 7"),
        ("call_group", "abc", ""),
        ("call_group", "5-2", ""),
        ("auth", " a , b ,,", "a,b"),
        ("aors", "a , b", "a , b"),
        ("media_address", "127.000.000.001", "127.0.0.1"),
        ("stir_shaken", "yes", "no"),
        ("sdp_owner", "a b", "-"),
        ("sdp_session", "", "-"),
        (
            "codec_prefs_incoming_offer",
            "prefer: configured",
            "prefer:configured, operation:intersect, keep:all, transcode:allow",
        ),
        ("callerid", "Bob <1>", '"Bob" <1>'),
        ("set_var", "A=1", "A=1"),
        ("context", "from-internal", "from-internal"),
    ],
)
def test_shown_values(option: str, raw: str, shown: str) -> None:
    assert shown_value("endpoint", option, raw) == shown


def test_unset_options_show_asterisks_default() -> None:
    assert shown_value("endpoint", "direct_media", None) == "true"
    assert shown_value("endpoint", "context", None) == "default"
    assert shown_value("endpoint", "callerid", None) == "<unknown>"
    assert shown_value("aor", "qualify_timeout", None) == "3.000000"
    assert shown_value("endpoint", "allow", None) == "(nothing)"


def test_unknown_options_are_shown_as_written() -> None:
    assert shown_value("endpoint", "no_such_option", "x") == "x"


@pytest.mark.parametrize(
    ("lines", "shown"),
    [
        ([("allow", "ULAW")], "(ulaw)"),
        ([("allow", "ulaw:20,!alaw,gsm")], "(ulaw|gsm)"),
        ([("allow", "(alaw|ulaw)")], "(alaw|ulaw)"),
        ([("allow", "g722|ulaw")], "(g722|ulaw)"),
        ([("allow", "ulaw"), ("disallow", "all"), ("allow", "gsm")], "(gsm)"),
        ([("disallow", "all"), ("allow", "(ulaw|alaw)")], "(ulaw|alaw)"),
        ([("allow", "ulaw,alaw"), ("allow", "!ulaw")], "(alaw)"),
        ([("allow", "none")], "(none)"),
        ([("disallow", "")], "(nothing)"),
        ([], "(nothing)"),
    ],
)
def test_codecs_apply_line_by_line(lines: list[tuple[str, str]], shown: str) -> None:
    assert shown_codecs(lines) == shown


def test_all_is_every_codec_asterisk_knows_so_disallow_removes_from_it() -> None:
    codecs = resolve_codecs([("disallow", "all"), ("allow", "all"), ("disallow", "ulaw")])
    assert "ulaw" not in codecs
    assert codecs[:4] == ["amr", "amrwb", "codec2", "g723"]
    assert "alaw" in codecs
    assert "none" not in codecs


def test_disallow_in_asterisks_printed_form_fills_then_removes() -> None:
    codecs = resolve_codecs([("allow", "gsm"), ("allow", "ulaw"), ("disallow", "(gsm)")])
    assert codecs[:2] == ["ulaw", "amr"]
    assert "gsm" not in codecs


def test_set_var_replaces_a_repeated_name_in_place() -> None:
    assert shown_set_var(["A=1", "B=2", "A=3", "", "noequals"]) == "A=3,B=2"


@pytest.mark.parametrize(
    ("option", "header"),
    [
        ("callerid", "Callerid"),
        ("outbound_auth", "OutboundAuth"),
        ("100rel", "100rel"),
        ("t38_udptl_ec", "T38UdptlEc"),
    ],
)
def test_ami_header_names(option: str, header: str) -> None:
    assert ami_header(option) == header
