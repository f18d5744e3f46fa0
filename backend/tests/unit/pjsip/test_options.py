"""Checks of values and objects against Asterisk's rules (measured in the lab, see
docs/asterisk-load-rules.md): one test per kind of problem."""

from __future__ import annotations

import pytest

from ispbx.pjsip.options import TEMPLATE, OptionTable, Problem


@pytest.fixture(scope="module")
def table() -> OptionTable:
    return OptionTable.load()


def codes(problems: list[Problem]) -> list[str]:
    return [p.code for p in problems]


def refused(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.refused]


# -- one line ------------------------------------------------------------------------------------


def test_a_valid_line_has_no_problem(table: OptionTable) -> None:
    assert table.check("endpoint", "context", "from-internal") == []


def test_unknown_option_names_the_closest_valid_ones(table: OptionTable) -> None:
    [problem] = table.check("endpoint", "contxt", "x")
    assert problem.code == "unknown_option"
    assert problem.field == "contxt"
    assert problem.suggestions[0] == "context"
    assert "did you mean context" in problem.message
    assert problem.refused


def test_option_names_are_case_insensitive(table: OptionTable) -> None:
    assert table.check("endpoint", "CONTEXT", "x") == []


def test_types_that_take_any_option_accept_unknown_names(table: OptionTable) -> None:
    assert table.check("phoneprov", "LABEL", "Front desk") == []


def test_value_outside_an_enumeration_lists_the_allowed_values(table: OptionTable) -> None:
    [problem] = table.check("endpoint", "dtmf_mode", "rfc2833")
    assert problem.code == "not_in_enum"
    assert "rfc4733, inband, info, auto, auto_info, none" in problem.message
    assert problem.suggestions == ("rfc4733",)


@pytest.mark.parametrize("value", ["RFC4733", "auto_info", "none"])
def test_enumerations_ignore_case_where_asterisk_does(table: OptionTable, value: str) -> None:
    assert table.check("endpoint", "dtmf_mode", value) == []


@pytest.mark.parametrize(
    ("option", "value"), [("t38_udptl_ec", "NONE"), ("incoming_call_offer_pref", "LOCAL")]
)
def test_some_enumerations_are_case_sensitive(table: OptionTable, option: str, value: str) -> None:
    assert codes(table.check("endpoint", option, value)) == ["not_in_enum"]


@pytest.mark.parametrize("value", ["on", "1", "TRUE", "off", "required", "peer_supported"])
def test_100rel_takes_every_boolean_spelling(table: OptionTable, value: str) -> None:
    assert table.check("endpoint", "100rel", value) == []


@pytest.mark.parametrize("value", ["maybe", ""])
def test_100rel_refuses_other_words_and_empty(table: OptionTable, value: str) -> None:
    assert codes(refused(table.check("endpoint", "100rel", value))) == ["not_in_enum"]


def test_media_encryption_takes_no_boolean_synonyms(table: OptionTable) -> None:
    assert codes(table.check("endpoint", "media_encryption", "false")) == ["not_in_enum"]


def test_callerid_privacy_also_takes_a_number(table: OptionTable) -> None:
    assert table.check("endpoint", "callerid_privacy", "5") == []
    assert codes(table.check("endpoint", "callerid_privacy", "")) == ["not_in_enum"]


def test_lenient_enumerations_warn_without_refusing(table: OptionTable) -> None:
    [problem] = table.check("endpoint", "dtls_setup", "bogus")
    assert problem.code == "not_in_enum"
    assert not problem.refused


@pytest.mark.parametrize("value", ["abc", "", "-1", "1.5", "08", "10abc", "4294967296"])
def test_non_numbers_in_unsigned_options_are_refused(table: OptionTable, value: str) -> None:
    [problem] = table.check("endpoint", "rtp_timeout", value)
    assert problem.code == "not_a_number"
    assert "whole number" in problem.message
    assert problem.refused


@pytest.mark.parametrize("value", ["10", "0x10", "010", "+5", "4294967295"])
def test_numbers_in_c_notation_are_accepted(table: OptionTable, value: str) -> None:
    assert table.check("endpoint", "rtp_timeout", value) == []


def test_range_is_checked(table: OptionTable) -> None:
    [problem] = table.check("endpoint", "rtp_port_start", "70000")
    assert problem.code == "out_of_range"
    assert "from 0 to 65535, not 70000" in problem.message


def test_signed_integers_take_negative_values(table: OptionTable) -> None:
    assert table.check("transport", "tcp_keepalive_idle_time", "-5") == []


def test_scanf_integers_only_need_a_leading_number(table: OptionTable) -> None:
    assert table.check("endpoint", "dtls_rekey", "0x10") == []
    assert codes(table.check("endpoint", "dtls_rekey", "abc")) == ["not_a_number"]


@pytest.mark.parametrize(
    ("value", "ok"), [("3.0", True), ("1e1", True), ("inf", True), ("abc", False), ("", False)]
)
def test_numbers(table: OptionTable, value: str, ok: bool) -> None:
    assert (table.check("aor", "qualify_timeout", value) == []) is ok


@pytest.mark.parametrize("value", ["yes", "no", "true", "0", "on", "Off", "y", "t", ""])
def test_booleans_take_ast_true_and_ast_false_words(table: OptionTable, value: str) -> None:
    assert table.check("endpoint", "direct_media", value) == []


def test_a_bad_boolean_is_reported_but_asterisk_reads_it_as_no(table: OptionTable) -> None:
    [problem] = table.check("endpoint", "direct_media", "maybe")
    assert problem.code == "not_a_bool"
    assert "reads it as no" in problem.message
    assert not problem.refused


@pytest.mark.parametrize(
    "value", ["ulaw", "ULAW,alaw", "!ulaw", "ulaw:20", "all", "(ulaw|alaw)", "g722|opus", "none"]
)
def test_codec_lists_in_asterisk_syntax(table: OptionTable, value: str) -> None:
    assert table.check("endpoint", "allow", value) == []


def test_bad_codec_names_get_the_closest_ones(table: OptionTable) -> None:
    [problem] = table.check("endpoint", "allow", "ulaw,ulwa")
    assert problem.code == "unknown_codec"
    assert "'ulwa'" in problem.message
    assert "ulaw" in problem.suggestions


@pytest.mark.parametrize("value", ["", "ulaw,", "! ulaw"])
def test_empty_codec_items_are_refused_in_allow(table: OptionTable, value: str) -> None:
    assert codes(table.check("endpoint", "allow", value)) == ["unknown_codec"]


def test_an_empty_disallow_is_accepted(table: OptionTable) -> None:
    assert table.check("endpoint", "disallow", "") == []


def test_bad_packetization_is_refused(table: OptionTable) -> None:
    assert codes(table.check("endpoint", "allow", "ulaw:abc")) == ["bad_value"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("prefer: configured", True),
        ("prefer: pending, operation: intersect, keep: all, transcode: allow", True),
        ("bogus", False),
        ("operation: union", False),  # not for incoming offers
    ],
)
def test_codec_prefs(table: OptionTable, value: str, ok: bool) -> None:
    assert (table.check("endpoint", "codec_prefs_incoming_offer", value) == []) is ok


@pytest.mark.parametrize(
    ("obj_type", "option", "value"),
    [
        ("endpoint", "set_var", "noequals"),
        ("endpoint", "from_user", "bob smith"),
        ("endpoint", "from_user", "bob@x"),
        ("endpoint", "tos_audio", "bogus"),
        ("endpoint", "tos_audio", ""),
        ("endpoint", "permit", "bogus"),
        ("endpoint", "contact_permit", "127.0.0.1/33"),
        ("aor", "contact", "http://x"),
        ("aor", "contact", "bogus"),
        ("auth", "md5_cred", "xyz"),
        ("auth", "password_digest", "SHA-1:abc"),
        ("identify", "match", "127.0.0.5/33"),
        ("identify", "match", "300.1.1.1"),
        ("identify", "match_header", "nocolon"),
        ("transport", "bind", "bogus"),
        ("transport", "local_net", "bogus"),
        ("auth", "supported_algorithms_uas", "bogus"),
        ("endpoint", "identify_by", "ip,bogus"),
        ("endpoint", "follow_redirect_methods", "bogus"),
    ],
)
def test_values_asterisk_refuses(
    table: OptionTable, obj_type: str, option: str, value: str
) -> None:
    problems = refused(table.check(obj_type, option, value))
    assert problems, f"{obj_type}.{option}={value!r}"
    assert all(p.field == option for p in problems)


@pytest.mark.parametrize(
    ("obj_type", "option", "value"),
    [
        ("endpoint", "set_var", "A=1"),
        ("endpoint", "set_var", ""),
        ("endpoint", "from_user", "Bob.1"),
        ("endpoint", "tos_audio", "ef"),
        ("endpoint", "tos_audio", "0x2e"),
        ("endpoint", "permit", "127.0.0.1/255.0.0.0,!127.0.0.2"),
        ("endpoint", "identify_by", ""),
        ("endpoint", "identify_by", "USERNAME,ip"),
        ("aor", "contact", "sip:a@127.0.0.1,sips:b@[::1]:5061"),
        ("aor", "contact", ""),
        ("auth", "md5_cred", "0123456789abcdef0123456789abcdef"),
        ("auth", "supported_algorithms_uas", "MD5,sha-256"),
        ("identify", "match", "127.0.0.0/8,127.0.0.7:5060,[::1]"),
        ("identify", "match_header", "X-Foo: bar"),
        ("transport", "bind", "127.0.0.1:5060"),
        ("transport", "method", ""),
        ("registration", "server_uri", "sip:127.0.0.1:5060"),
    ],
)
def test_values_asterisk_accepts(
    table: OptionTable, obj_type: str, option: str, value: str
) -> None:
    assert refused(table.check(obj_type, option, value)) == []


def test_a_host_name_in_identify_match_is_a_warning(table: OptionTable) -> None:
    [problem] = table.check("identify", "match", "pbx.example.net")
    assert problem.code == "host_name"
    assert not problem.refused


def test_bad_call_groups_are_ignored_by_asterisk(table: OptionTable) -> None:
    [problem] = table.check("endpoint", "call_group", "1,abc")
    assert not problem.refused
    assert table.check("endpoint", "call_group", "1,3-4,63") == []


def test_a_type_option_that_differs_from_the_type(table: OptionTable) -> None:
    assert codes(table.check("endpoint", "type", "aor")) == ["bad_value"]


# -- types ---------------------------------------------------------------------------------------


def test_an_unknown_type_is_ignored_by_asterisk_and_gets_suggestions(table: OptionTable) -> None:
    [problem] = table.check_type("endpiont")
    assert problem.code == "unknown_type"
    assert problem.suggestions[0] == "endpoint"


def test_type_names_are_case_sensitive(table: OptionTable) -> None:
    assert codes(table.check_type("Endpoint")) == ["unknown_type"]
    assert table.check_type("endpoint") == []


def test_contact_sections_are_not_read_from_pjsip_conf(table: OptionTable) -> None:
    [problem] = table.check_type("contact")
    assert problem.code == "not_from_file"


# -- references ----------------------------------------------------------------------------------


def test_missing_references_name_the_field(table: OptionTable) -> None:
    known = {"auth": {"101"}, "aor": {"101"}, "transport": {"transport-udp"}}
    problems = table.check_references(
        "endpoint", {"auth": "101", "aors": "101, 102", "transport": "transport-ud"}, known
    )
    assert [(p.field, p.code) for p in problems] == [
        ("aors", "missing_reference"),
        ("transport", "missing_reference"),
    ]
    assert "aor '102'" in problems[0].message
    assert problems[1].suggestions == ("transport-udp",)
    assert not any(p.refused for p in problems)


def test_types_the_caller_does_not_know_are_not_checked(table: OptionTable) -> None:
    assert table.check_references("endpoint", {"auth": "x"}, {"aor": set()}) == []


def test_missing_templates_make_asterisk_reject_the_file(table: OptionTable) -> None:
    [problem] = table.check_references(
        "endpoint", {}, {TEMPLATE: {"endpoint-basic"}}, templates=["endpoint-basik"]
    )
    assert problem.code == "missing_template"
    assert problem.refused
    assert problem.suggestions == ("endpoint-basic",)


# -- objects -------------------------------------------------------------------------------------


def test_a_good_endpoint_loads(table: OptionTable) -> None:
    lines = [("type", "endpoint"), ("context", "x"), ("disallow", "all"), ("allow", "ulaw")]
    assert table.check_object("endpoint", lines) == []


def test_an_overridden_bad_line_still_makes_asterisk_refuse(table: OptionTable) -> None:
    lines = [("type", "endpoint"), ("rtp_timeout", "abc"), ("rtp_timeout", "5")]
    assert codes(table.check_object("endpoint", lines)) == ["not_a_number"]


def test_check_object_takes_a_mapping_too(table: OptionTable) -> None:
    assert codes(table.check_object("endpoint", {"foo": "1"})) == ["unknown_option"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"timers_min_se": "89"}, "timers_min_se"),
        ({"timers_sess_expires": "80"}, "timers_sess_expires"),
        ({"dtls_auto_generate_cert": "yes", "dtls_cert_file": "/x.pem"}, "dtls_cert_file"),
        (
            {"preferred_codec_only": "yes", "incoming_call_offer_pref": "remote"},
            "preferred_codec_only",
        ),
        ({"rtp_port_start": "2000"}, "rtp_port_end"),
        ({"rtp_port_start": "100", "rtp_port_end": "200"}, "rtp_port_end"),
        ({"rtp_port_start": "3000", "rtp_port_end": "2000"}, "rtp_port_end"),
    ],
)
def test_endpoint_rules(table: OptionTable, options: dict[str, str], field: str) -> None:
    [problem] = refused(table.check_object("endpoint", options))
    assert problem.code == "object_rule"
    assert problem.field == field


def test_rules_that_hold(table: OptionTable) -> None:
    good = {"rtp_port_start": "3000", "rtp_port_end": "4000", "timers_min_se": "90"}
    assert table.check_object("endpoint", good) == []


def test_warnings_do_not_refuse(table: OptionTable) -> None:
    problems = table.check_object("endpoint", {"sdp_owner": "a b", "stir_shaken": "yes"})
    assert codes(problems) == ["replaced", "deprecated"]
    assert refused(problems) == []


@pytest.mark.parametrize(
    ("options", "ok"),
    [
        ({"username": "u", "password": "p"}, True),
        ({"password": "p"}, False),
        ({"username": "u"}, False),
        ({"username": "u", "password": ""}, False),
        (
            {"username": "u", "auth_type": "md5", "md5_cred": "0123456789abcdef0123456789abcdef"},
            True,
        ),
        ({"username": "u", "password_digest": "MD5:0123456789abcdef0123456789abcdef"}, True),
        ({"username": "u", "auth_type": "google_oauth"}, False),
        ({"username": "u", "password": "p", "auth_type": "bogus"}, False),
    ],
)
def test_auth_rules(table: OptionTable, options: dict[str, str], ok: bool) -> None:
    assert (refused(table.check_object("auth", options)) == []) is ok


@pytest.mark.parametrize(
    ("obj_type", "options", "ok"),
    [
        ("identify", {"endpoint": "x", "match": "127.0.0.5"}, True),
        ("identify", {"match": "127.0.0.5"}, False),
        ("identify", {"endpoint": "x"}, False),
        ("identify", {"endpoint": "x", "match_header": "X-Foo: bar"}, True),
        ("transport", {"protocol": "tcp", "bind": "127.0.0.1:5070"}, True),
        ("transport", {"protocol": "tcp"}, False),
        ("registration", {"server_uri": "sip:127.0.0.1", "client_uri": "sip:me@127.0.0.1"}, True),
        ("registration", {"client_uri": "sip:me@127.0.0.1"}, False),
        (
            "registration",
            {"server_uri": "sip:127.0.0.1", "client_uri": "sip:me@127.0.0.1", "line": "yes"},
            False,
        ),
        ("global", {"debug": ""}, False),
        ("global", {"max_forwards": "abc"}, False),
        ("resource_list", {"event": "presence", "list_item": "a,b"}, True),
        ("resource_list", {"event": "bogus"}, False),
        ("aor", {"max_contacts": "1", "contact": "sip:127.0.0.1"}, True),
        ("aor", {"default_expiration": ""}, False),
    ],
)
def test_rules_of_other_types(
    table: OptionTable, obj_type: str, options: dict[str, str], ok: bool
) -> None:
    assert (refused(table.check_object(obj_type, options)) == []) is ok


def test_check_object_of_an_unknown_type(table: OptionTable) -> None:
    assert codes(table.check_object("endpiont", {})) == ["unknown_type"]


# -- duplicates ----------------------------------------------------------------------------------


def test_a_repeated_id_skips_the_whole_type(table: OptionTable) -> None:
    skipped = table.duplicate_objects(
        [("endpoint", "101", True), ("auth", "101", True), ("endpoint", "101", True)]
    )
    assert list(skipped) == ["endpoint"]
    assert skipped["endpoint"].code == "duplicate_object"
    assert skipped["endpoint"].value == "101"
    assert "loads no endpoint at all" in skipped["endpoint"].message


def test_a_repeat_of_an_object_that_failed_to_load_is_no_duplicate(table: OptionTable) -> None:
    assert table.duplicate_objects([("endpoint", "z", False), ("endpoint", "z", True)]) == {}


def test_a_repeat_that_is_itself_invalid_is_still_a_duplicate(table: OptionTable) -> None:
    assert list(table.duplicate_objects([("endpoint", "z", True), ("endpoint", "z", False)])) == [
        "endpoint"
    ]


def test_two_global_sections_skip_global(table: OptionTable) -> None:
    skipped = table.duplicate_objects([("global", "global", True), ("global", "g2", False)])
    assert skipped["global"].code == "more_than_one"


def test_types_not_from_the_file_are_ignored_in_duplicates(table: OptionTable) -> None:
    assert table.duplicate_objects([("contact", "c", True), ("contact", "c", True)]) == {}
