#!/usr/bin/env python3
"""Generate ``ispbx/pjsip/asterisk_options.json`` from Asterisk's own documentation XML.

Asterisk's ``core-en_US.xml`` (shipped by Debian's ``asterisk`` package) documents every pjsip.conf
object type and option with its default and, for some, the allowed values. It has no data types:
this script infers them (an ``enumlist`` is an enumeration, a default of yes/no is a boolean,
digits are an integer, an option named like ``aors`` refers to objects of another type…) and then
applies ``OVERRIDES``: the places where the inference is wrong or too weak, each checked against
the real Asterisk in the lab (``config show help <module> <type> <option>`` prints the type
Asterisk registered and the default it applies; ``tests/integration/test_asterisk_rules.py``
compares every option).

Codec names cannot come from the XML: ``allow=`` takes Asterisk's format names. ``--lab`` asks a
temporary lab Asterisk (``core show codecs``); ``--codecs FILE`` reads a saved copy of that output;
without either, the codec list of the existing output table is kept.

    python backend/tools/gen_option_table.py [--xml PATH] [--out PATH] [--lab | --codecs FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BACKEND = HERE.parent
DEFAULT_XML = Path("/var/cache/ispbx-lab/rootfs/usr/share/asterisk/documentation/core-en_US.xml")
DEFAULT_OUT = BACKEND / "src" / "ispbx" / "pjsip" / "asterisk_options.json"
CONFIG_FILE = "pjsip.conf"
FORMAT = 1

# Object types whose objects never come from pjsip.conf (sorcery maps them to astdb): a
# `type=contact` section in pjsip.conf is silently ignored by Asterisk.
ASTDB_TYPES = frozenset({"contact", "subscription_persistence"})
# Two sections of these types make Asterisk use none of them: "At most one pjsip.conf type=global
# object can be defined.  You have 2 defined." (the defaults apply, on a reload too). Two system
# sections are both applied (measured in the lab).
SINGLE_OBJECT_TYPES = frozenset({"global"})
# Loaded once at start; a reload logs "Type 'system' is not reloadable, maintaining previous
# values".
NOT_RELOADABLE_TYPES = frozenset({"system"})
# Types that accept options of any name besides the documented ones (the XML documents a `*`).
ANY_OPTION_TYPES = frozenset({"phoneprov", "inbound-publication"})

# Options that point at other objects: (type, option) -> (target type, comma list?).
# Asterisk loads an object whose reference is dangling; the caller is warned on write.
REFERENCES: Mapping[tuple[str, str], tuple[str, bool]] = {
    ("endpoint", "aors"): ("aor", True),
    ("endpoint", "auth"): ("auth", True),
    ("endpoint", "outbound_auth"): ("auth", True),
    ("endpoint", "transport"): ("transport", False),
    ("identify", "endpoint"): ("endpoint", False),
    ("registration", "endpoint"): ("endpoint", False),
    ("registration", "outbound_auth"): ("auth", True),
    ("registration", "transport"): ("transport", False),
    ("outbound-publish", "outbound_auth"): ("auth", True),
    ("outbound-publish", "transport"): ("transport", False),
    ("phoneprov", "endpoint"): ("endpoint", False),
    ("inbound-publication", "endpoint"): ("endpoint", False),
    ("asterisk-publication", "devicestate_publish"): ("outbound-publish", False),
    ("asterisk-publication", "mailboxstate_publish"): ("outbound-publish", False),
}

UINT_MAX = 4294967295
INT_MIN, INT_MAX = -2147483648, 2147483647

# What Asterisk does differs from what the XML lets us infer. Each entry replaces fields of the
# inferred option; the comment says what the lab showed. "lenient" means Asterisk accepts a value
# outside the documented list (and ignores it); "bool_words" means the yes/no values also accept
# every ast_true/ast_false spelling (on, 1, t, ...); "refuses_empty" means an empty value fails.
ENDPOINT_OVERRIDES: dict[str, dict[str, Any]] = {
    # allow/disallow take Asterisk's format names, applied line by line.
    "allow": {"kind": "codecs", "accumulates": True, "refuses_empty": True},
    "disallow": {"kind": "codecs", "accumulates": True},
    # `none` is accepted (and documented in later releases).
    "dtmf_mode": {"add_values": ["none"]},
    # yes/no are parsed with ast_true/ast_false: `100rel=on` is `yes`; an empty value fails.
    "100rel": {"bool_words": True},
    "timers": {"bool_words": True, "aliases": {"forced": "always"}},
    # reinvite is another name for invite (shown as invite).
    "direct_media_method": {"aliases": {"reinvite": "invite"}},
    "connected_line_method": {"aliases": {"reinvite": "invite"}},
    # A plain string to Asterisk: shown as written (`a , b`), unlike auth's trimmed list.
    "aors": {"shown": "raw"},
    # Also takes a number (sscanf "%d"); shown by name, "unknown" when it has none.
    "callerid_privacy": {"numeric": True, "default": "allowed_not_screened"},
    # Compared with strcmp: `NONE`, `LOCAL` are refused.
    "t38_udptl_ec": {"case_sensitive": True},
    "incoming_call_offer_pref": {"case_sensitive": True},
    "outgoing_call_offer_pref": {"case_sensitive": True},
    # An unknown value is ignored and the default kept; Asterisk loads the endpoint.
    "dtls_setup": {"lenient": True},
    "dtls_fingerprint": {"lenient": True},
    "dtls_verify": {"default": "no", "shown": "dtls_verify"},
    # Comma lists of enumeration values; an empty value is accepted.
    "identify_by": {"kind": "enum_list", "default": "username,ip"},
    "follow_redirect_methods": {"kind": "enum_list", "values": ["message"]},
    "redirect_method": {"default": "user"},
    "callerid": {"kind": "callerid"},
    "set_var": {"kind": "set_var", "accumulates": True},
    "from_user": {"kind": "uri_user"},
    "tos_audio": {"kind": "tos", "default": "0"},
    "tos_video": {"kind": "tos", "default": "0"},
    "call_group": {"kind": "group"},
    "pickup_group": {"kind": "group"},
    "named_call_group": {"list": True},
    "named_pickup_group": {"list": True},
    "permit": {"kind": "acl", "accumulates": True},
    "deny": {"kind": "acl", "accumulates": True},
    "contact_permit": {"kind": "acl", "accumulates": True},
    "contact_deny": {"kind": "acl", "accumulates": True},
    # Named ACLs of acl.conf: a missing one is logged, the endpoint still loads.
    "acl": {"accumulates": True, "list": True},
    "contact_acl": {"accumulates": True, "list": True},
    "rtp_port_start": {"max": 65535},
    "rtp_port_end": {"max": 65535},
    # sscanf("%30u"): "abc" fails, "0x10" reads 0.
    "dtls_rekey": {"kind": "integer", "parse": "scanf", "default": "0"},
    "dtls_auto_generate_cert": {"kind": "bool", "shown": "Yes_No"},
    # The file must exist and be readable by Asterisk (checked on the PBX, not here).
    "dtls_cert_file": {"kind": "file"},
    "dtls_private_key": {"kind": "file"},
    "dtls_ca_file": {"kind": "file"},
    "dtls_ca_path": {"kind": "file"},
    # Deprecated: any value loads, Asterisk warns and always shows "no".
    "stir_shaken": {"shown_fixed": "no"},
    # Registered as unsigned integers, undocumented defaults.
    "rtp_keepalive": {"kind": "integer", "default": "0"},
    "fax_detect_timeout": {"kind": "integer", "default": "0"},
    "cos_audio": {"kind": "integer", "default": "0"},
    "cos_video": {"kind": "integer", "default": "0"},
    "sub_min_expiry": {"default": "0"},
    # Booleans whose default the XML does not give.
    "bind_rtp_to_media_address": {"kind": "bool", "default": "no"},
    "rewrite_contact": {"kind": "bool", "default": "no"},
    "srtp_tag_32": {"kind": "bool", "default": "no"},
    "follow_early_media_fork": {"kind": "bool", "default": "yes"},
    # OPT_YESNO_T: shown as yes/no instead of true/false.
    "trust_connected_line": {"kind": "bool", "default": "yes", "shown": "yes_no"},
    "send_connected_line": {"kind": "bool", "default": "yes", "shown": "yes_no"},
    "mwi_subscribe_replaces_unsolicited": {"kind": "bool", "default": "no", "shown": "yes_no"},
    "webrtc": {"shown": "yes_no"},
    "context": {"default": "default"},
    "codec_prefs_incoming_offer": {
        "default": "prefer: pending, operation: intersect, keep: all, transcode: allow"
    },
    "codec_prefs_outgoing_offer": {
        "default": "prefer: pending, operation: union, keep: all, transcode: allow"
    },
    "codec_prefs_incoming_answer": {"default": "prefer: pending, operation: intersect, keep: all"},
    "codec_prefs_outgoing_answer": {"default": "prefer: pending, operation: intersect, keep: all"},
    "mailboxes": {"list": True},
    # Shown normalised when it is a numeric address (127.000.000.001 -> 127.0.0.1).
    "media_address": {"kind": "string", "shown": "address"},
}

OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    **{("endpoint", name): fields for name, fields in ENDPOINT_OVERRIDES.items()},
    # XML says digest; Asterisk registers userpass.
    ("auth", "auth_type"): {"default": "userpass"},
    ("auth", "password_digest"): {"kind": "digest", "values": [], "list": True},
    ("auth", "md5_cred"): {"kind": "digest"},
    ("auth", "supported_algorithms_uac"): {"kind": "enum_list"},
    ("auth", "supported_algorithms_uas"): {"kind": "enum_list"},
    ("aor", "contact"): {"kind": "sip_uri", "list": True, "accumulates": True},
    ("aor", "qualify_frequency"): {"max": 86400},
    ("aor", "qualify_2xx_only"): {"kind": "bool", "default": "no"},
    ("aor", "authenticate_qualify"): {"kind": "bool", "default": "no"},
    ("aor", "support_path"): {"kind": "bool", "default": "no"},
    ("aor", "mailboxes"): {"list": True},
    ("contact", "qualify_frequency"): {"max": 86400},
    ("contact", "qualify_2xx_only"): {"kind": "bool", "default": "no"},
    ("contact", "authenticate_qualify"): {"kind": "bool", "default": "no", "shown": "yes_no"},
    ("contact", "prune_on_boot"): {"kind": "bool", "default": "no", "shown": "yes_no"},
    ("contact", "via_port"): {"kind": "integer", "default": "0"},
    ("transport", "bind"): {"kind": "address"},
    # An empty method means the default one.
    ("transport", "method"): {"empty_ok": True},
    # XML documents tos/cos with default "false"; Asterisk registers a DSCP value and a number.
    ("transport", "tos"): {"kind": "tos", "default": "0"},
    ("transport", "cos"): {"kind": "integer", "default": "0"},
    # The TLS booleans have no registered default (the XML says false).
    ("transport", "require_client_cert"): {"default": ""},
    ("transport", "verify_client"): {"default": ""},
    ("transport", "verify_server"): {"default": ""},
    ("transport", "allow_wildcard_certs"): {"default": ""},
    # Signed integers (OPT_INT_T): -5 loads.
    ("transport", "tcp_keepalive_idle_time"): {"min": INT_MIN, "max": INT_MAX},
    ("transport", "tcp_keepalive_interval_time"): {"min": INT_MIN, "max": INT_MAX, "default": "1"},
    ("transport", "tcp_keepalive_probe_count"): {"min": INT_MIN, "max": INT_MAX},
    ("transport", "websocket_write_timeout"): {"min": 1, "max": INT_MAX},
    ("transport", "external_signaling_port"): {"max": 65535},
    ("transport", "local_net"): {"kind": "acl", "accumulates": True},
    ("transport", "ca_list_file"): {"kind": "file"},
    ("transport", "ca_list_path"): {"kind": "file"},
    ("transport", "cert_file"): {"kind": "file"},
    ("transport", "priv_key_file"): {"kind": "file"},
    ("identify", "match"): {"kind": "match", "list": True, "accumulates": True},
    ("identify", "match_header"): {"kind": "header_match"},
    # XML says "s"; Asterisk registers an empty default (and sends "s" when empty).
    ("registration", "contact_user"): {"default": ""},
    ("registration", "line"): {"kind": "bool", "default": "no"},
    ("registration", "support_path"): {"kind": "bool", "default": "no"},
    ("registration", "support_outbound"): {"kind": "bool", "default": "no", "shown": "yes_no"},
    ("registration", "server_uri"): {"kind": "sip_uri"},
    ("registration", "client_uri"): {"kind": "sip_uri"},
    # event is free text to Asterisk, but must not be empty.
    ("resource_list", "event"): {"lenient": True, "refuses_empty": True},
    ("resource_list", "list_item"): {"list": True, "accumulates": True},
    ("asterisk-publication", "device_state_filter"): {"kind": "regex"},
    ("asterisk-publication", "mailbox_state_filter"): {"kind": "regex"},
    ("global", "endpoint_identifier_order"): {"default": "ip,username,anonymous", "list": True},
    ("global", "ignore_uri_user_options"): {"kind": "bool", "default": "no"},
    ("global", "taskprocessor_overload_trigger"): {"default": "global"},
    ("global", "mwi_tps_queue_low"): {"min": INT_MIN, "max": INT_MAX},
    # Invalid values are logged and replaced by MD5; the XML lists them as an enumeration.
    ("global", "default_auth_algorithms_uas"): {
        "kind": "enum_list",
        "lenient": True,
        "default": "MD5",
    },
    ("global", "default_auth_algorithms_uac"): {
        "kind": "enum_list",
        "lenient": True,
        "default": "MD5",
    },
    # yes, no or a host address: free text, must not be empty (global_apply refuses it).
    ("global", "debug"): {"kind": "string", "refuses_empty": True},
    ("global", "default_from_user"): {"refuses_empty": True},
    ("system", "follow_early_media_fork"): {"kind": "bool", "default": "yes"},
    ("system", "accept_multiple_sdp_answers"): {"kind": "bool", "default": "no"},
    ("subscription_persistence", "src_port"): {"kind": "integer", "default": "0"},
    ("subscription_persistence", "local_port"): {"kind": "integer", "default": "0"},
    ("subscription_persistence", "cseq"): {"kind": "integer", "default": "0"},
    ("subscription_persistence", "transport_key"): {"kind": "string", "default": "0"},
    ("subscription_persistence", "prune_on_boot"): {"kind": "bool", "default": "no"},
}

# `allow=all` adds every codec but these (measured in the lab: `allow=all` then PJSIPShowEndpoint).
NOT_IN_ALL = ("none",)

CODEC_LINE = re.compile(r"^\s*(\d+)\s+(audio|video|image|text)\s+(\S+)\s+(\S+)\s+\d+\s+\(")
TOKEN = re.compile(r"^[A-Za-z0-9_.+-]+$")
PARAM = re.compile(r"^\s*(\w+)\s*:\s*<(.*)>\s*$")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    xml_path: Path = args.xml
    out: Path = args.out
    data = xml_path.read_bytes()
    table: dict[str, Any] = {
        "format": FORMAT,
        "asterisk_version": args.asterisk_version or _short_version(_package_version(xml_path)),
        "asterisk_package": _package_version(xml_path),
        "xml": "/usr/share/asterisk/documentation/core-en_US.xml",
        "xml_sha256": hashlib.sha256(data).hexdigest(),
        "generated_by": "backend/tools/gen_option_table.py",
        "codecs": _codecs(args, out),
        "codecs_not_in_all": list(NOT_IN_ALL),
        "types": build_types(ET.fromstring(data)),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump(table))
    counts = ", ".join(f"{name} {len(t['options'])}" for name, t in table["types"].items())
    print(f"wrote {out} (Asterisk {table['asterisk_version']}): {counts}")
    return 0


def dump(table: Mapping[str, Any]) -> str:
    """JSON with one line per codec and per option: compact, and diffs stay readable."""

    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))

    lines = ["{"]
    for key, value in table.items():
        if key == "codecs":
            rows = ",\n".join(f"  {one(row)}" for row in value)
            lines.append(f' "codecs": [\n{rows}\n ],')
        elif key == "types":
            lines.append(' "types": {')
            type_blocks = []
            for name, spec in value.items():
                head = {k: v for k, v in spec.items() if k != "options"}
                options = ",\n".join(
                    f"    {one(option)}: {one(entry)}" for option, entry in spec["options"].items()
                )
                type_blocks.append(
                    f'  {one(name)}: {one(head)[:-1]}, "options": {{\n{options}\n  }}}}'
                )
            lines.append(",\n".join(type_blocks))
            lines.append(" }")
        else:
            lines.append(f" {one(key)}: {one(value)},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xml", type=Path, default=DEFAULT_XML, help="core-en_US.xml")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON table to write")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--lab", action="store_true", help="ask a temporary lab Asterisk")
    source.add_argument("--codecs", type=Path, help="saved output of `core show codecs`")
    parser.add_argument("--asterisk-version", help="when the XML is not inside a Debian rootfs")
    return parser.parse_args(argv)


# -- the XML ---------------------------------------------------------------------------------------


def build_types(root: ET.Element) -> dict[str, Any]:
    """Every pjsip.conf object type of every module, options in documentation order."""
    types: dict[str, Any] = {}
    for module, obj in _pjsip_objects(root):
        name = obj.get("name", "")
        options: dict[str, Any] = {}
        for option in obj.findall("configOption"):
            option_name = option.get("name", "")
            options[option_name] = infer_option(name, option_name, option)
        types[name] = {
            "module": module,
            "synopsis": _text(obj.find("synopsis")),
            "source": "astdb" if name in ASTDB_TYPES else CONFIG_FILE,
            "single_object": name in SINGLE_OBJECT_TYPES,
            "reloadable": name not in NOT_RELOADABLE_TYPES,
            "any_option": name in ANY_OPTION_TYPES,
            "options": options,
        }
    return types


def _pjsip_objects(root: ET.Element) -> Iterator[tuple[str, ET.Element]]:
    for info in root.iter("configInfo"):
        for config_file in info.findall("configFile"):
            if config_file.get("name") == CONFIG_FILE:
                for obj in config_file.findall("configObject"):
                    yield info.get("name", ""), obj


def infer_option(object_type: str, name: str, option: ET.Element) -> dict[str, Any]:
    """The option's entry: inferred from the XML, then corrected by OVERRIDES."""
    default = option.get("default")
    entry: dict[str, Any] = {"kind": "string", "default": default}
    enums = _top_enums(option)
    reference = REFERENCES.get((object_type, name))
    if name == "type":
        entry["kind"] = "type"
    elif enums and all(":" in value for value in enums):
        entry.update(kind="codec_prefs", params=_codec_pref_params(enums))
    elif enums and all(TOKEN.match(value) for value in enums):
        entry.update(kind="enum", values=enums)
    elif reference is not None:
        target, is_list = reference
        entry.update(kind="reference", target=target, list=is_list)
    elif default is not None and default.lower() in ("yes", "no", "true", "false"):
        entry["kind"] = "bool"
    elif default is not None and re.fullmatch(r"-?\d+", default):
        entry.update(kind="integer", min=min(0, int(default)), max=UINT_MAX)
        if int(default) < 0:
            entry["min"] = INT_MIN
            entry["max"] = INT_MAX
    elif default is not None and re.fullmatch(r"-?\d+\.\d+", default):
        entry["kind"] = "number"
    entry = _apply_override(entry, OVERRIDES.get((object_type, name), {}))
    entry["synopsis"] = _text(option.find("synopsis"))
    return {key: value for key, value in entry.items() if value is not None}


def _apply_override(entry: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(entry)
    for key, value in override.items():
        if key == "add_values":
            result["values"] = [*result.get("values", []), *value]
        else:
            result[key] = value
    if result["kind"] == "integer":
        result.setdefault("min", 0)
        result.setdefault("max", UINT_MAX)
    else:
        result.pop("min", None)
        result.pop("max", None)
    if result["kind"] not in ("enum", "enum_list", "digest"):
        result.pop("values", None)
    if result["kind"] in ("enum_list", "digest") and "values" not in result:
        result["values"] = []
    return result


def _top_enums(option: ET.Element) -> list[str]:
    """Values of the description's first-level enumlists (nested ones describe parameters)."""
    description = option.find("description")
    if description is None:
        return []
    values: list[str] = []
    for enumlist in _shallow(description, "enumlist"):
        values.extend(enum.get("name", "") for enum in enumlist.findall("enum"))
    return values


def _shallow(element: ET.Element, tag: str) -> Iterator[ET.Element]:
    """Descendants named `tag` that are not inside another `tag`."""
    for child in element:
        if child.tag == tag:
            yield child
        else:
            yield from _shallow(child, tag)


def _codec_pref_params(enums: list[str]) -> dict[str, list[str]]:
    """`prefer: < pending | configured >` items into {"prefer": ["pending", "configured"]}."""
    params: dict[str, list[str]] = {}
    for item in enums:
        match = PARAM.match(item)
        if match:
            params[match.group(1)] = [v.strip() for v in match.group(2).split("|") if v.strip()]
    return params


def _text(element: ET.Element | None) -> str:
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


# -- versions and codecs --------------------------------------------------------------------------


def _package_version(xml_path: Path) -> str:
    """The Debian package version, from the dpkg status of the rootfs holding the XML."""
    for parent in xml_path.resolve().parents:
        status = parent / "var" / "lib" / "dpkg" / "status"
        if status.is_file():
            for block in status.read_text(errors="replace").split("\n\n"):
                if re.search(r"^Package: asterisk$", block, re.M):
                    found = re.search(r"^Version: (\S+)$", block, re.M)
                    if found:
                        return found.group(1)
    return "unknown"


def _short_version(package: str) -> str:
    """1:22.10.1+dfsg+~cs6-1 -> 22.10.1"""
    found = re.match(r"(?:\d+:)?(\d+(?:\.\d+)*)", package)
    return found.group(1) if found else package


def parse_codecs(text: str) -> list[dict[str, Any]]:
    """Rows of `core show codecs`, ordered by codec id (the order `allow=all` uses)."""
    rows = []
    for line in text.splitlines():
        match = CODEC_LINE.match(line)
        if match:
            codec_id, media, _codec, name = match.groups()
            rows.append({"id": int(codec_id), "media": media, "name": name})
    return sorted(rows, key=lambda row: int(row["id"]))


def _codecs(args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    if args.codecs is not None:
        rows = parse_codecs(Path(args.codecs).read_text())
    elif args.lab:
        rows = parse_codecs(_ask_lab("core show codecs"))
    elif out.exists():
        existing: list[dict[str, Any]] = json.loads(out.read_text())["codecs"]
        return existing
    else:
        raise SystemExit("no codec list: pass --lab or --codecs FILE")
    if not rows:
        raise SystemExit("`core show codecs` gave no codecs")
    return rows


def _ask_lab(command: str) -> str:
    """Run one CLI command on a temporary lab Asterisk (needs root and the cached chroot)."""
    sys.path.insert(0, str(BACKEND / "src"))
    import socket

    from ispbx_lab.lab import Lab, free_port

    lab = Lab(
        name="gen-option-table",
        ami_port=free_port(),
        sip_port=free_port(socket.SOCK_DGRAM),
        http_port=free_port(),
    )
    lab.start()
    try:
        return lab.cli(command).stdout
    finally:
        lab.remove()


if __name__ == "__main__":
    raise SystemExit(main())
