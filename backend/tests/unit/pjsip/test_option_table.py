"""The bundled option table: what it says it came from, and what it holds."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import pytest

from ispbx.pjsip.options import OptionTable

XML = Path("/var/cache/ispbx-lab/rootfs/usr/share/asterisk/documentation/core-en_US.xml")
EXPECTED_COUNTS = {
    "endpoint": 146,
    "auth": 13,
    "aor": 16,
    "transport": 29,
    "contact": 16,
    "system": 17,
    "global": 29,
    "domain_alias": 2,
}


@pytest.fixture(scope="module")
def table() -> OptionTable:
    return OptionTable.load()


@pytest.mark.parametrize(("obj_type", "count"), EXPECTED_COUNTS.items())
def test_each_res_pjsip_type_has_the_options_of_asterisk_22_10(
    table: OptionTable, obj_type: str, count: int
) -> None:
    assert len(table.options(obj_type)) == count


def test_types_of_other_res_pjsip_modules_are_included(table: OptionTable) -> None:
    assert {"identify", "registration", "outbound-publish", "acl", "phoneprov"} <= set(
        table.types()
    )


def test_the_table_names_its_asterisk_version_and_xml(table: OptionTable) -> None:
    assert table.asterisk_version == "22.10.1"
    assert len(table.xml_sha256) == 64


def test_the_recorded_sha256_is_the_lab_xml_when_it_is_there(table: OptionTable) -> None:
    if not XML.exists():
        pytest.skip("no lab chroot here")
    assert hashlib.sha256(XML.read_bytes()).hexdigest() == table.xml_sha256


def test_load_reads_the_package_data_once() -> None:
    assert OptionTable.load() is OptionTable.load()


def test_the_table_is_package_data_next_to_the_module() -> None:
    text = resources.files("ispbx.pjsip").joinpath("asterisk_options.json").read_text()
    assert json.loads(text)["format"] == 1


def test_codecs_are_asterisk_format_names_in_codec_id_order(table: OptionTable) -> None:
    assert table.codecs[:7] == ("amr", "amrwb", "codec2", "g723", "ulaw", "alaw", "gsm")
    assert {"g722", "opus", "slin16", "h264", "t140"} <= set(table.codecs)
    assert "none" in table.codecs
    assert "none" not in table.codecs_in_all


def test_option_names_match_in_any_case_like_asterisk(table: OptionTable) -> None:
    spec = table.option("endpoint", "Context")
    assert spec is not None
    assert spec.name == "context"


def test_unknown_type_raises_key_error_naming_it(table: OptionTable) -> None:
    with pytest.raises(KeyError, match="endpiont"):
        table.options("endpiont")


# -- the inference, as it landed in the table (see gen_option_table.py) -----------------------


@pytest.mark.parametrize(
    ("obj_type", "option", "kind"),
    [
        ("endpoint", "direct_media", "bool"),  # default "yes"
        ("endpoint", "rtp_timeout", "integer"),  # default "0"
        ("aor", "qualify_timeout", "number"),  # default "3.0"
        ("endpoint", "dtmf_mode", "enum"),  # enumlist
        ("endpoint", "aors", "reference"),
        ("endpoint", "allow", "codecs"),  # override
        ("endpoint", "callerid", "callerid"),  # override
        ("endpoint", "codec_prefs_incoming_offer", "codec_prefs"),  # enumlist of "name: <a|b>"
        ("endpoint", "type", "type"),
        ("endpoint", "context", "string"),
        ("transport", "tos", "tos"),  # XML says default false: override
        ("transport", "cos", "integer"),  # XML says default false: override
    ],
)
def test_kinds(table: OptionTable, obj_type: str, option: str, kind: str) -> None:
    spec = table.option(obj_type, option)
    assert spec is not None
    assert spec.kind == kind


def test_enumerations_carry_their_values(table: OptionTable) -> None:
    spec = table.option("endpoint", "dtmf_mode")
    assert spec is not None
    assert set(spec.values) == {"rfc4733", "inband", "info", "auto", "auto_info", "none"}


def test_references_name_their_target_type(table: OptionTable) -> None:
    targets = {
        option: (spec.target, spec.is_list)
        for option in ("auth", "outbound_auth", "aors", "transport")
        if (spec := table.option("endpoint", option)) is not None
    }
    assert targets == {
        "auth": ("auth", True),
        "outbound_auth": ("auth", True),
        "aors": ("aor", True),
        "transport": ("transport", False),
    }


def test_accumulating_options_are_marked(table: OptionTable) -> None:
    marked = {
        (obj_type, name)
        for obj_type in ("endpoint", "aor", "identify")
        for name, spec in table.options(obj_type).items()
        if spec.accumulates
    }
    assert {("endpoint", "set_var"), ("aor", "contact"), ("identify", "match")} <= marked
    assert ("endpoint", "permit") in marked
    assert ("endpoint", "context") not in marked


def test_defaults_follow_what_asterisk_registers_not_the_xml(table: OptionTable) -> None:
    auth_type = table.option("auth", "auth_type")
    context = table.option("endpoint", "context")
    assert auth_type is not None
    assert context is not None
    assert auth_type.default == "userpass"  # the XML says digest
    assert context.default == "default"  # the XML has none


def test_types_not_read_from_pjsip_conf_are_marked(table: OptionTable) -> None:
    assert table.object_type("contact").source == "astdb"
    assert table.object_type("endpoint").source == "pjsip.conf"
    assert table.object_type("global").single_object
    assert not table.object_type("system").reloadable
