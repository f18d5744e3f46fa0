"""What Asterisk 22 does when it loads pjsip.conf, checked against the real thing.

* The option table agrees with what Asterisk registered (``config show help``: option names,
  types, defaults).
* The table's verdicts agree with Asterisk for a matrix of values: every object ``check_object``
  says Asterisk refuses is absent after the load and named in a "Could not create an object" log
  line, and every other one is loaded.
* Duplicate ids, single-object types, invalid objects on a reload, ignored types.
* ``shown_value`` gives what PJSIPShowEndpoint returns.

Findings are written up in docs/asterisk-load-rules.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from ispbx.ami import AmiActionError, AmiClient, AmiMessage
from ispbx.pjsip import PjsipConfig, parse_text
from ispbx.pjsip.options import OptionSpec, OptionTable, Problem
from ispbx.pjsip.shown import ami_header, shown_codecs, shown_set_var, shown_value
from ispbx_lab.lab import AMI_SECRET, AMI_USERNAME, Lab, free_port
from tests.integration.conftest import running_lab

lab_running = contextlib.contextmanager(running_lab)

pytestmark = pytest.mark.integration

TABLE = OptionTable.load()
TRANSPORT = "[transport-udp]\ntype = transport\nprotocol = udp\nbind = 127.0.0.1:5060\n\n"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOT_CREATED = re.compile(
    r"Could not create an object of type '([^']+)' with id '([^']+)' from configuration file"
)

# Values tried for every option of a kind (plus the enumeration's own values, the codec names…).
VALUES_BY_KIND: Mapping[str, tuple[str, ...]] = {
    "bool": ("yes", "no", "on", "0", "maybe", ""),
    "integer": (
        "10",
        "0x10",
        "010",
        "+5",
        " 7",
        "abc",
        "",
        "-1",
        "08",
        "1.5",
        "70000",
        "4294967296",
    ),
    "number": ("3.5", "1e1", "-1", "abc", ""),
    "tos": ("ef", "AF41", "46", "0x2e", "bogus", ""),
    "set_var": ("A=1", "=x", "noequals", ""),
    "uri_user": ("bob.1", "bob smith", "bob@x", ""),
    "group": ("1,3-4", "abc", "64", ""),
    "acl": ("127.0.0.1/32", "127.0.0.0/255.0.0.0", "bogus", "127.0.0.1/33", ""),
    "codec_prefs": ("prefer: configured", "keep: first, transcode: prevent", "bogus", "prefer: x"),
    "callerid": ('"Bob" <101>', ""),
    "string": ("x", ""),
    "reference": ("nonexistent", ""),
    "file": ("",),
    "sip_uri": ("sip:127.0.0.1", "sips:a@127.0.0.1:5061", "bogus", "http://x", ""),
    "digest": ("0123456789abcdef0123456789abcdef", "SHA-256:" + "0" * 64, "xyz", "SHA-1:ab"),
    "match": ("127.0.0.0/8", "127.0.0.7:5060", "127.0.0.5/33"),
    "header_match": ("X-Foo: bar", "nocolon"),
}
# Values the table must judge right although they are not (or no longer) in its lists.
EXTRA_VALUES: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("endpoint", "dtmf_mode"): ("none",),  # accepted, missing from the 22.10 XML
    ("endpoint", "incoming_call_offer_pref"): ("local_merge", "remote_merge"),  # outgoing only
    ("endpoint", "security_negotiation"): ("yes",),
    ("endpoint", "timers"): ("forced", "t"),
    ("auth", "auth_type"): ("MD5", "google_oauth"),
}
CODEC_VALUES = ("ULAW", "ulaw:20", "!ulaw", "all", "(ulaw|alaw)", "g722|ulaw", "bogus", "", "ulaw,")
# Bases that make an object of the type loadable, so that one line decides.
BASES = {
    "endpoint": "",
    "auth": "username = u\npassword = p\n",
    "aor": "",
    "identify": "endpoint = x\nmatch = 127.0.0.9\n",
}
# Needs res_geolocation, which the lab does not load: Asterisk refuses a non-empty value.
NEEDS_MODULE = {"geoloc_incoming_call_profile", "geoloc_outgoing_call_profile"}


@dataclass(frozen=True)
class Case:
    obj_type: str
    name: str
    option: str
    value: str


def values_for(obj_type: str, spec: OptionSpec) -> list[str]:
    return [*_values_for(spec), *EXTRA_VALUES.get((obj_type, spec.name), ())]


def _values_for(spec: OptionSpec) -> list[str]:
    if spec.kind == "codecs":
        return [*TABLE.codecs, *CODEC_VALUES]
    if spec.kind in ("enum", "enum_list"):
        first = spec.values[0] if spec.values else "x"
        extra = [first.upper(), first.title(), "bogus", "", "on", "false"]
        if spec.kind == "enum_list" and len(spec.values) > 1:
            extra.append(f"{spec.values[1]}, {first}")
        return [*spec.values, *extra]
    return list(VALUES_BY_KIND.get(spec.kind, ("x",)))


def matrix() -> tuple[str, list[Case]]:
    """One object per (type, option, value), named after the case."""
    lines = [TRANSPORT, "[x]\ntype = endpoint\n"]
    cases: list[Case] = []
    for obj_type, base in BASES.items():
        for spec in TABLE.options(obj_type).values():
            if spec.kind == "type":
                continue
            for value in dict.fromkeys(values_for(obj_type, spec)):
                name = f"{obj_type[:2]}{len(cases)}"
                cases.append(Case(obj_type, name, spec.name, value))
                lines.append(f"[{name}]\ntype = {obj_type}\n{base}{spec.name} = {value}\n")
    return "".join(lines), cases


MATRIX_TEXT, MATRIX_CASES = matrix()

SHOWN_CASES: list[tuple[str, str]] = [
    ("callerid", '"Bob \\"B\\"" <(555) 123-4567>'),
    ("callerid", '"Bob" <101>'),
    ("callerid", "Bob <101>"),
    ("callerid", '"Bob"'),
    ("callerid", "101"),
    ("callerid", '"101"'),
    ("callerid", "(555) 123-4567"),
    ("callerid", "555.123.4567"),
    ("callerid", "<101>"),
    ("callerid", ""),
    ("callerid", "Bob <101"),
    ("callerid", '"Bob <101>"'),
    ("callerid", "Jörg Müller <102>"),
    ("callerid", "A\\\\B <1>"),
    ("callerid", '"A, B" <1-2-3>'),
    ("callerid", "x" * 90 + " <1>"),
    ("callerid", '"' + 'q"' * 10 + '" <1>'),
    ("callerid", "Bob <[1-2]>"),
    ("callerid", '"  Bob  "   <  101  >'),
    ("callerid", "Bob <1.>"),
    ("callerid", '"Bob" 101'),
    ("callerid", "+1 (555) 000"),
    ("callerid", "Bob \\; Jr <1>"),
    ("direct_media", "yes"),
    ("direct_media", "maybe"),
    ("trust_connected_line", "no"),
    ("send_connected_line", "1"),
    ("webrtc", "no"),
    ("mwi_subscribe_replaces_unsolicited", "yes"),
    ("dtls_auto_generate_cert", "on"),
    ("rtp_timeout", "0x10"),
    ("rtp_timeout", "010"),
    ("dtls_rekey", "0x10"),
    ("100rel", "true"),
    ("100rel", "REQUIRED"),
    ("timers", "forced"),
    ("timers", "0"),
    ("dtmf_mode", "RFC4733"),
    ("media_encryption", "NO"),
    ("direct_media_method", "reinvite"),
    ("connected_line_method", "UPDATE"),
    ("callerid_privacy", "allowed"),
    ("callerid_privacy", "5"),
    ("callerid_privacy", "PROHIB"),
    ("identify_by", "USERNAME,ip,username"),
    ("dtls_verify", "fingerprint"),
    ("dtls_fingerprint", "sha-1"),
    ("dtls_setup", "ACTIVE"),
    ("tos_audio", "ef"),
    ("tos_audio", "0x2e"),
    ("call_group", "1,3-4,7"),
    ("call_group", "abc"),
    ("named_call_group", "Sales, support"),
    ("auth", " a , b ,,"),
    ("outbound_auth", "x,y"),
    ("aors", "a , b"),
    ("mailboxes", "1@default , 2"),
    ("media_address", "127.000.000.001"),
    ("redirect_method", "USER"),
    ("follow_redirect_methods", "MESSAGE"),
    ("stir_shaken", "yes"),
    ("codec_prefs_incoming_offer", "prefer: configured"),
    ("codec_prefs_outgoing_offer", "keep: first"),
    ("incoming_call_offer_pref", "remote_first"),
    ("security_negotiation", "MEDIASEC"),
    ("sdp_owner", "a b"),
    ("sdp_session", ""),
    ("t38_udptl_ec", "fec"),
    ("set_var", "A=1"),
    ("language", "de"),
    ("qualify_timeout", "1e1"),
]
CODEC_CASES = [
    "allow = ULAW\n",
    "allow = all\n",
    "allow = ulaw:20,!alaw,gsm\n",
    "allow = (alaw|ulaw)\n",
    "disallow = all\nallow = all\ndisallow = ulaw\n",
    "allow = ulaw\ndisallow = all\nallow = gsm\n",
    "allow = gsm\nallow = ulaw\ndisallow = (gsm)\n",
    "allow = none\n",
    "disallow =\n",
    "set_var = A=1\nset_var = B=2\nset_var = A=3\n",
]


def shown_text() -> str:
    lines = []
    for index, (option, value) in enumerate(SHOWN_CASES):
        obj_type = "aor" if option == "qualify_timeout" else "endpoint"
        lines.append(f"[sh{index}]\ntype = {obj_type}\n{option} = {value}\n")
    for index, body in enumerate(CODEC_CASES):
        lines.append(f"[co{index}]\ntype = endpoint\n{body}")
    return "".join(lines)


# -- helpers -------------------------------------------------------------------------------------


def log_text(lab: Lab) -> str:
    path = lab.home / "log" / "messages.log"
    return path.read_text(errors="replace") if path.exists() else ""


def log_mark(lab: Lab) -> int:
    path = lab.home / "log" / "messages.log"
    return path.stat().st_size if path.exists() else 0


def log_since(lab: Lab, mark: int) -> str:
    path = lab.home / "log" / "messages.log"
    with path.open("rb") as handle:
        handle.seek(mark)
        return handle.read().decode(errors="replace")


def not_created(log: str) -> set[tuple[str, str]]:
    return {(m.group(1), m.group(2)) for m in NOT_CREATED.finditer(log)}


async def _ami(lab: Lab, actions: list[dict[str, str]]) -> list[list[AmiMessage] | None]:
    client = AmiClient("127.0.0.1", lab.ami_port, AMI_USERNAME, AMI_SECRET, action_timeout=30.0)
    await client.connect()
    results: list[list[AmiMessage] | None] = []
    try:
        for action in actions:
            try:
                results.append(await client.list_action(action))
            except AmiActionError:
                results.append(None)
    finally:
        await client.close()
    return results


def ami(lab: Lab, actions: list[dict[str, str]]) -> list[list[AmiMessage] | None]:
    return asyncio.run(_ami(lab, actions))


def loaded(lab: Lab) -> dict[str, set[str]]:
    """Ids Asterisk has, per type: endpoints, auths and aors over AMI, the rest over the CLI."""
    actions = [{"Action": f"PJSIPShow{kind}"} for kind in ("Endpoints", "Auths", "Aors")]
    found: dict[str, set[str]] = {}
    for obj_type, items in zip(("endpoint", "auth", "aor"), ami(lab, actions), strict=True):
        names = {i["ObjectName"] for i in items or [] if i.get("ObjectName")}
        found[obj_type] = names
    for obj_type, command, label in (
        ("identify", "pjsip list identifies", "Identify"),
        ("transport", "pjsip list transports", "Transport"),
    ):
        listing = lab.cli(command).stdout
        rows = re.findall(rf"^\s*{label}:\s+(\S+)", listing, re.M)
        found[obj_type] = {row.split("/")[0] for row in rows if not row.startswith("<")}
    return found


def edit(lab: Lab, text: str) -> str:
    """Write pjsip.conf, reload, and return what Asterisk logged meanwhile."""
    time.sleep(1.05)  # Asterisk compares mtimes in whole seconds
    mark = log_mark(lab)
    lab.write_pjsip({"pjsip.conf": text})
    lab.reload_pjsip()
    return log_since(lab, mark)


def refusals(config: PjsipConfig, obj_type: str, name: str) -> list[Problem]:
    section = config.objects(obj_type)[name].section
    problems = TABLE.check_object(obj_type, section.all_options)
    return [p for p in problems if p.refused or p.option in NEEDS_MODULE]


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("rules", {"pjsip.conf": MATRIX_TEXT + shown_text()})


@pytest.fixture(scope="module")
def matrix_config() -> PjsipConfig:
    return parse_text(MATRIX_TEXT + shown_text(), path=Path("pjsip.conf"))


@pytest.fixture(scope="module")
def reload_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("reload", {"pjsip.conf": TRANSPORT + "[ok1]\ntype = endpoint\n"})


# -- the table against Asterisk's own registration -----------------------------------------------


def config_help(lab: Lab, module: str, obj_type: str, option: str = "") -> str:
    return ANSI.sub("", lab.cli(f"config show help {module} {obj_type} {option}".strip()).stdout)


SYNTAX = re.compile(r"\[Syntax\]\s*\n(.*?)\n\s*\n", re.S)
REGISTERED = re.compile(r"= \[(.*?)\] \(Default: (.*?)\) \(Regex: (?:true|false)\)", re.S)
KINDS_OF = {
    "Boolean": {"bool"},
    "Unsigned Integer": {"integer"},
    "Integer": {"integer"},
    "Double": {"number"},
    "Codec": {"codecs"},
    "None": {"type"},
}


def test_every_registered_option_has_the_kind_and_default_of_the_table(
    matrix_lab: Lab,
) -> None:
    mismatches = []
    checked = 0
    for obj_type in TABLE.types():
        spec_type = TABLE.object_type(obj_type)
        for spec in spec_type.options.values():
            if spec.name == "*":
                continue
            text = config_help(matrix_lab, spec_type.module, obj_type, spec.name)
            syntax = SYNTAX.search(text)
            registered = REGISTERED.search(" ".join(syntax.group(1).split())) if syntax else None
            if registered is None:
                continue  # the module is not loaded in the lab
            checked += 1
            kind, default = registered.groups()
            if spec.kind not in KINDS_OF.get(kind, {spec.kind}):
                mismatches.append(f"{obj_type}.{spec.name}: Asterisk {kind}, table {spec.kind}")
            if kind == "Unsigned Integer" and spec.minimum != 0:
                mismatches.append(f"{obj_type}.{spec.name}: unsigned, table min {spec.minimum}")
            if kind == "Integer" and (spec.minimum or 0) >= 0 and spec.maximum != 2**31 - 1:
                mismatches.append(f"{obj_type}.{spec.name}: signed, table {spec.minimum}")
            if (spec.default or "") != default and spec.name != "user_agent":
                mismatches.append(
                    f"{obj_type}.{spec.name}: default {default!r}, table {spec.default!r}"
                )
    assert checked >= 300
    assert mismatches == []


@pytest.mark.parametrize(
    ("module", "obj_type"),
    [
        ("res_pjsip", "endpoint"),
        ("res_pjsip", "auth"),
        ("res_pjsip", "aor"),
        ("res_pjsip", "transport"),
        ("res_pjsip", "global"),
        ("res_pjsip", "system"),
        ("res_pjsip_endpoint_identifier_ip", "identify"),
        ("res_pjsip_outbound_registration", "registration"),
    ],
)
def test_the_table_lists_exactly_the_options_asterisk_lists(
    matrix_lab: Lab, module: str, obj_type: str
) -> None:
    text = config_help(matrix_lab, module, obj_type)
    listed = set(re.findall(r"^(\S+)\s+--", text.split("[Config Options]")[1], re.M))
    assert listed == {spec.name for spec in TABLE.options(obj_type).values()}


def test_codec_names_are_asterisks_formats(matrix_lab: Lab) -> None:
    listing = matrix_lab.cli("core show codecs").stdout
    formats = set(re.findall(r"^\s*\d+\s+\w+\s+\S+\s+(\S+)\s+\d+\s+\(", listing, re.M))
    assert formats == set(TABLE.codecs)


# -- verdicts ------------------------------------------------------------------------------------


def test_the_matrix_covers_every_option_of_endpoint_auth_aor_and_identify() -> None:
    options = {(case.obj_type, case.option) for case in MATRIX_CASES}
    expected = {
        (obj_type, spec.name)
        for obj_type in BASES
        for spec in TABLE.options(obj_type).values()
        if spec.kind != "type"
    }
    assert options == expected
    assert len(MATRIX_CASES) > 1000


def test_check_object_predicts_exactly_which_objects_asterisk_refuses(
    matrix_lab: Lab, matrix_config: PjsipConfig
) -> None:
    present = loaded(matrix_lab)
    wrong = []
    for case in MATRIX_CASES:
        predicted = not refusals(matrix_config, case.obj_type, case.name)
        actual = case.name in present[case.obj_type]
        if predicted != actual:
            wrong.append(f"{case.obj_type} {case.option} = {case.value!r}: Asterisk {actual}")
    assert wrong == []


def test_every_refused_object_is_named_in_the_log(
    matrix_lab: Lab, matrix_config: PjsipConfig
) -> None:
    refused = {
        (case.obj_type, case.name)
        for case in MATRIX_CASES
        if refusals(matrix_config, case.obj_type, case.name)
    }
    logged = {
        item
        for item in not_created(log_text(matrix_lab))
        if item[1].startswith(("en", "au", "ao", "id"))
    }
    assert refused
    assert logged == refused


def test_the_log_gives_the_refused_line_by_number_but_no_file_name(matrix_lab: Lab) -> None:
    case = next(c for c in MATRIX_CASES if (c.option, c.value) == ("rtp_timeout", "abc"))
    lines = MATRIX_TEXT.splitlines()
    number = lines.index(f"[{case.name}]") + 3  # [name], type, the option
    assert lines[number - 1] == "rtp_timeout = abc"
    log = log_text(matrix_lab)
    assert f"config_options.c: Error parsing rtp_timeout=abc at line {number} of \n" in log
    assert (
        f"res_sorcery_config.c: Could not create an object of type 'endpoint' with id "
        f"'{case.name}' from configuration file 'pjsip.conf'" in log
    )


# -- shown values --------------------------------------------------------------------------------


def test_shown_value_is_what_pjsip_show_endpoint_returns(
    matrix_lab: Lab, matrix_config: PjsipConfig
) -> None:
    names = [f"sh{index}" for index in range(len(SHOWN_CASES))]
    endpoint_names = [
        n for n, (o, _) in zip(names, SHOWN_CASES, strict=True) if o != "qualify_timeout"
    ]
    replies = ami(
        matrix_lab, [{"Action": "PJSIPShowEndpoint", "Endpoint": n} for n in endpoint_names]
    )
    details = {
        name: _detail(reply, "EndpointDetail")
        for name, reply in zip(endpoint_names, replies, strict=True)
    }
    aors = {i["ObjectName"]: i for i in ami(matrix_lab, [{"Action": "PJSIPShowAors"}])[0] or []}
    wrong = []
    for name, (option, _raw) in zip(names, SHOWN_CASES, strict=True):
        obj_type = "aor" if option == "qualify_timeout" else "endpoint"
        parsed = dict(matrix_config.objects(obj_type)[name].section.options)[option]
        detail = aors.get(name) if obj_type == "aor" else details[name]
        assert detail is not None, name
        expected = shown_value(obj_type, option, parsed)
        actual = detail.get(ami_header(option))
        if actual != expected:
            wrong.append(f"{option} = {parsed!r}: Asterisk {actual!r}, shown_value {expected!r}")
    assert wrong == []


def test_codecs_and_set_var_build_up_like_asterisk(
    matrix_lab: Lab, matrix_config: PjsipConfig
) -> None:
    names = [f"co{index}" for index in range(len(CODEC_CASES))]
    replies = ami(matrix_lab, [{"Action": "PJSIPShowEndpoint", "Endpoint": n} for n in names])
    wrong = []
    for name, reply in zip(names, replies, strict=True):
        detail = _detail(reply, "EndpointDetail")
        lines = matrix_config.objects("endpoint")[name].section.all_options
        set_vars = [value for key, value in lines if key == "set_var"]
        expected = {"Allow": shown_codecs(lines), "SetVar": shown_set_var(set_vars)}
        actual = {key: detail.get(key) for key in expected}
        if actual != expected:
            wrong.append(f"{name} {lines}: Asterisk {actual}, expected {expected}")
    assert wrong == []


def _detail(reply: list[AmiMessage] | None, event: str) -> AmiMessage:
    assert reply is not None
    return next(item for item in reply if item.get("Event") == event)


# -- duplicates, first load and reload -----------------------------------------------------------

DUPLICATES = TRANSPORT + (
    "[t2]\ntype = transport\nprotocol = tcp\nbind = 127.0.0.1:{p1}\n"
    "[t2]\ntype = transport\nprotocol = tcp\nbind = 127.0.0.1:{p2}\n"
    "[ok1]\ntype = endpoint\n"
    "[dup1]\ntype = endpoint\ncontext = first\n"
    "[dup1]\ntype = endpoint\ncontext = second\n"
    "[a_ok]\ntype = auth\nusername = a\npassword = p\n"
    "[a_dup]\ntype = auth\nusername = first\npassword = p\n"
    "[a_dup]\ntype = auth\nusername = second\npassword = p\n"
    "[o_ok]\ntype = aor\n"
    "[o_dup]\ntype = aor\n"
    "[o_dup]\ntype = aor\n"
    "[i_ok]\ntype = identify\nendpoint = ok1\nmatch = 127.0.0.2\n"
    "[i_dup]\ntype = identify\nendpoint = ok1\nmatch = 127.0.0.3\n"
    "[i_dup]\ntype = identify\nendpoint = ok1\nmatch = 127.0.0.4\n"
)


def test_a_duplicate_id_on_first_load_loads_no_object_of_that_type(rootfs: None) -> None:
    text = DUPLICATES.format(p1=free_port(), p2=free_port())
    objects = parse_text_unchecked(text)
    with lab_running("dups", {"pjsip.conf": text}) as lab:
        present = loaded(lab)
        log = log_text(lab)
    assert present == {t: set() for t in ("endpoint", "auth", "aor", "identify", "transport")}
    for obj_type, name in [
        ("auth", "a_dup"),
        ("aor", "o_dup"),
        ("transport", "t2"),
        ("endpoint", "dup1"),
        ("identify", "i_dup"),
    ]:
        assert (
            "res_sorcery_config.c: Config file 'pjsip.conf' could not be loaded; configuration "
            f"contains a duplicate object: '{name}' of type '{obj_type}'" in log
        )
    assert set(TABLE.duplicate_objects(objects)) == {
        "endpoint",
        "auth",
        "aor",
        "identify",
        "transport",
    }


def parse_text_unchecked(text: str) -> list[tuple[str, str, bool]]:
    """(type, id, loadable) of every object section, in order, without the reader's own
    duplicate rejection (the reader still rejects the whole file today)."""
    objects = []
    for block in re.split(r"(?m)^(?=\[)", text):
        header = re.match(r"\[([^\]]+)\]", block)
        obj_type = re.search(r"(?m)^type = (\S+)", block)
        if header and obj_type:
            name = header.group(1)
            lines = re.findall(r"(?m)^(\w+) = (.*)$", block)
            loadable = not [p for p in TABLE.check_object(obj_type.group(1), lines) if p.refused]
            objects.append((obj_type.group(1), name, loadable))
    return objects


def test_a_repeat_of_an_object_that_failed_is_no_duplicate(rootfs: None) -> None:
    text = TRANSPORT + "[z]\ntype = endpoint\nfoo = 1\n[z]\ntype = endpoint\ncontext = second\n"
    with lab_running("dupfail", {"pjsip.conf": text}) as lab:
        present = loaded(lab)["endpoint"]
        detail = _detail(
            ami(lab, [{"Action": "PJSIPShowEndpoint", "Endpoint": "z"}])[0], "EndpointDetail"
        )
    assert present == {"z"}
    assert detail["Context"] == "second"
    assert TABLE.duplicate_objects(parse_text_unchecked(text)) == {}


def test_a_duplicate_whose_second_copy_is_invalid_still_skips_the_type(rootfs: None) -> None:
    text = (
        TRANSPORT + "[z]\ntype = endpoint\n[z]\ntype = endpoint\nfoo = 1\n[ok]\ntype = endpoint\n"
    )
    with lab_running("dupbad", {"pjsip.conf": text}) as lab:
        present = loaded(lab)["endpoint"]
        log = log_text(lab)
    assert present == set()
    assert "configuration contains a duplicate object: 'z' of type 'endpoint'" in log
    assert set(TABLE.duplicate_objects(parse_text_unchecked(text))) == {"endpoint"}


def test_two_global_sections_load_no_global_settings(rootfs: None) -> None:
    text = TRANSPORT + "[g1]\ntype = global\nmax_forwards = 11\n[g2]\ntype = global\n"
    with lab_running("globals", {"pjsip.conf": text}) as lab:
        log = log_text(lab)
        settings = lab.cli("pjsip show settings").stdout
    assert (
        "res_pjsip/config_global.c: At most one pjsip.conf type=global object can be defined.  "
        "You have 2 defined." in log
    )
    assert re.search(r"max_forwards\s*:\s*70", settings)
    assert set(TABLE.duplicate_objects(parse_text_unchecked(text))) == {"global"}


def test_on_reload_a_duplicate_keeps_the_types_previous_objects_and_others_reload(
    reload_lab: Lab,
) -> None:
    edit(
        reload_lab,
        TRANSPORT
        + "[ok1]\ntype = endpoint\ncontext = v1\n[a1]\ntype = auth\nusername = u1\npassword = p\n",
    )
    log = edit(
        reload_lab,
        TRANSPORT
        + "[ok1]\ntype = endpoint\ncontext = v2\n[dup]\ntype = endpoint\n[dup]\ntype = endpoint\n"
        "[a1]\ntype = auth\nusername = u2\npassword = p\n",
    )
    present = loaded(reload_lab)
    detail = _detail(
        ami(reload_lab, [{"Action": "PJSIPShowEndpoint", "Endpoint": "ok1"}])[0], "EndpointDetail"
    )
    auths = {i["ObjectName"]: i for i in ami(reload_lab, [{"Action": "PJSIPShowAuths"}])[0] or []}
    assert "configuration contains a duplicate object: 'dup' of type 'endpoint'" in log
    assert present["endpoint"] == {"ok1"}  # the new one is not added
    assert detail["Context"] == "v1"  # the changed one keeps its old value
    assert auths["a1"]["Username"] == "u2"  # other types reload normally


def test_on_reload_an_invalid_object_keeps_its_previous_version(reload_lab: Lab) -> None:
    edit(reload_lab, TRANSPORT + "[ok1]\ntype = endpoint\ncontext = v1\n")
    log = edit(
        reload_lab,
        TRANSPORT + "[ok1]\ntype = endpoint\ncontext = v3\nrtp_timeout = abc\n"
        "[bad2]\ntype = endpoint\nfoo = 1\n[good2]\ntype = endpoint\n",
    )
    present = loaded(reload_lab)["endpoint"]
    detail = _detail(
        ami(reload_lab, [{"Action": "PJSIPShowEndpoint", "Endpoint": "ok1"}])[0], "EndpointDetail"
    )
    assert present == {"ok1", "good2"}
    assert detail["Context"] == "v1"
    assert "config_options.c: Error parsing rtp_timeout=abc at line 9 of \n" in log
    assert re.search(
        r"ERROR\[\d+\] res_sorcery_config\.c: Could not create an object of type 'endpoint' "
        r"with id 'ok1' from configuration file 'pjsip\.conf'",
        log,
    )
    assert re.search(
        r"NOTICE\[\d+\] res_sorcery_config\.c: Retaining existing configuration for object of "
        r"type 'endpoint' with id 'ok1'",
        log,
    )
    assert "Could not find option suitable for category 'bad2' named 'foo' at line 12 of \n" in log
    assert (
        "Retaining existing configuration for object of type 'endpoint' with id 'bad2'" not in log
    )


def test_a_reload_rereads_an_unchanged_file_while_objects_are_invalid(reload_lab: Lab) -> None:
    edit(reload_lab, TRANSPORT + "[ok1]\ntype = endpoint\nfoo = 1\n")
    mark = log_mark(reload_lab)
    reload_lab.reload_pjsip()
    again = log_since(reload_lab, mark)
    edit(reload_lab, TRANSPORT + "[ok1]\ntype = endpoint\n")
    mark = log_mark(reload_lab)
    reload_lab.reload_pjsip()
    quiet = log_since(reload_lab, mark)
    assert "Could not find option suitable for category 'ok1' named 'foo'" in again
    assert "res_sorcery_config" not in quiet


def test_a_whole_file_error_keeps_everything(reload_lab: Lab) -> None:
    edit(reload_lab, TRANSPORT + "[ok1]\ntype = endpoint\n")
    log = edit(reload_lab, TRANSPORT + "[ok1]\ntype = endpoint\n[new](nosuch)\ntype = endpoint\n")
    assert loaded(reload_lab)["endpoint"] == {"ok1"}
    assert "Inheritance requested, but category 'nosuch' does not exist, line 8 of " in log
    assert "Contents of config file 'pjsip.conf' are invalid and cannot be parsed" in log


def test_sections_of_unknown_types_are_silently_ignored(reload_lab: Lab) -> None:
    log = edit(
        reload_lab,
        TRANSPORT + "[ok1]\ntype = endpoint\n[upper]\ntype = Endpoint\n[typo]\ntype = endpiont\n"
        "[c1]\ntype = contact\nuri = sip:x@127.0.0.1\n[notype]\ncontext = x\n",
    )
    assert loaded(reload_lab)["endpoint"] == {"ok1"}
    for name in ("upper", "typo", "c1", "notype"):
        assert f"'{name}'" not in log
    assert "c1" not in reload_lab.cli("pjsip show contacts").stdout
    assert [p.code for p in TABLE.check_type("Endpoint")] == ["unknown_type"]
    assert [p.code for p in TABLE.check_type("contact")] == ["not_from_file"]


# -- transports and registrations (each transport binds its own port) ---------------------------

TRANSPORT_CASES = [
    "protocol = tcp\nbind = 127.0.0.1:{port}\n",
    "protocol = TCP\nbind = 127.0.0.1:{port}\n",
    "protocol = bogus\nbind = 127.0.0.1:{port}\n",
    "protocol = tcp\n",
    "protocol = tcp\nbind = bogus\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\ntos = bogus\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\ntos = af41\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\nexternal_signaling_port = 70000\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\ntcp_keepalive_idle_time = abc\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\ntcp_keepalive_idle_time = -5\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\nmethod = bogus\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\nmethod =\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\nlocal_net = bogus\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\nlocal_net = 127.0.0.0/8\nlocal_net = 10.0.0.0/8\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\nwebsocket_write_timeout = 0\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\nverify_server = maybe\n",
    "protocol = tcp\nbind = 127.0.0.1:{port}\ncos = abc\n",
    "protocol = udp\nbind = 127.0.0.1:{port}\nasync_operations = 5\n",
    "protocol = udp\nbind = 127.0.0.1:{port}\nallow_reload = yes\nfoo = 1\n",
]
REGISTRATION_CASES = [
    "server_uri = sip:127.0.0.1:{port}\nclient_uri = sip:me@127.0.0.1:{port}\n",
    "client_uri = sip:me@127.0.0.1:{port}\n",
    "server_uri = sip:127.0.0.1:{port}\nclient_uri = sip:me@127.0.0.1:{port}\nline = yes\n",
    "server_uri = sip:127.0.0.1:{port}\nclient_uri = sip:me@127.0.0.1:{port}\n"
    "retry_interval = abc\n",
    "server_uri = sip:127.0.0.1:{port}\nclient_uri = sip:me@127.0.0.1:{port}\n"
    "line = yes\nendpoint = x\n",
]


def test_check_object_predicts_transports_and_registrations(rootfs: None) -> None:
    port = free_port()  # nothing listens there: registrations go nowhere
    transports = [case.format(port=free_port()) for case in TRANSPORT_CASES]
    registrations = [case.format(port=port) for case in REGISTRATION_CASES]
    text = TRANSPORT + "[x]\ntype = endpoint\n"
    text += "".join(f"[tr{i}]\ntype = transport\n{body}" for i, body in enumerate(transports))
    text += "".join(f"[re{i}]\ntype = registration\n{body}" for i, body in enumerate(registrations))
    config = parse_text(text)
    with lab_running("transports", {"pjsip.conf": text}) as lab:
        present = loaded(lab)["transport"]
        log = log_text(lab)
    refused_registrations = {
        name for obj_type, name in not_created(log) if obj_type == "registration"
    }
    wrong = []
    for obj_type, count in (("transport", len(transports)), ("registration", len(registrations))):
        for index in range(count):
            name = f"{obj_type[:2]}{index}"
            predicted = not refusals(config, obj_type, name)
            actual = (
                name in present if obj_type == "transport" else name not in refused_registrations
            )
            if predicted != actual:
                wrong.append(f"{name}: Asterisk loads it: {actual}")
    assert wrong == []


def test_the_log_names_an_included_file_but_not_the_main_one(rootfs: None) -> None:
    files = {
        "pjsip.conf": TRANSPORT + "[main]\ntype = endpoint\nrtp_timeout = abc\n#include inc.conf\n",
        "inc.conf": "\n\n[inc]\ntype = endpoint\nrtp_timeout = xyz\n",
    }
    with lab_running("include", files) as lab:
        log = log_text(lab)
        inside = lab.inside
    assert "Error parsing rtp_timeout=abc at line 8 of \n" in log
    assert f"Error parsing rtp_timeout=xyz at line 5 of {inside}/etc/inc.conf\n" in log
    assert ("endpoint", "inc") in not_created(log)
