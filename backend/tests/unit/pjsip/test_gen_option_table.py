"""The generator's inference, on a small XML written like Asterisk's documentation."""

from __future__ import annotations

import importlib.util
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "gen_option_table.py"

XML = """<docs>
 <configInfo name="res_pjsip">
  <configFile name="pjsip.conf">
   <configObject name="endpoint">
    <synopsis>Endpoint</synopsis>
    <configOption name="type"><synopsis>Must be of type 'endpoint'.</synopsis></configOption>
    <configOption name="flag" default="yes"><synopsis>A
      flag</synopsis></configOption>
    <configOption name="count" default="5"><synopsis>A count</synopsis></configOption>
    <configOption name="low" default="-1"><synopsis>Signed</synopsis></configOption>
    <configOption name="ratio" default="3.0"><synopsis>A ratio</synopsis></configOption>
    <configOption name="mode" default="a">
     <synopsis>A mode</synopsis>
     <description><enumlist><enum name="a"/><enum name="b"/></enumlist></description>
    </configOption>
    <configOption name="prefs">
     <synopsis>Prefs</synopsis>
     <description><enumlist>
      <enum name="prefer: &lt; pending | configured &gt;">
       <enumlist><enum name="pending"/></enumlist>
      </enum>
      <enum name="keep : &lt; all | first &gt;"/>
     </enumlist></description>
    </configOption>
    <configOption name="aors"><synopsis>AoR(s)</synopsis></configOption>
    <configOption name="context"><synopsis>Context</synopsis></configOption>
    <configOption name="allow"><synopsis>Codecs</synopsis></configOption>
   </configObject>
  </configFile>
  <configFile name="other.conf"><configObject name="ignored"/></configFile>
 </configInfo>
 <configInfo name="res_pjsip_endpoint_identifier_ip">
  <configFile name="pjsip.conf">
   <configObject name="identify">
    <configOption name="endpoint"><synopsis>Name of endpoint</synopsis></configOption>
   </configObject>
  </configFile>
 </configInfo>
</docs>"""

CODECS = """      ID TYPE  NAME         FORMAT           QUALITY DESCRIPTION
------------------------------------------------------------------------------------------------
       6 audio alaw         alaw                 100 (G.711 a-law)
      23 audio speex        speex16               40 (SpeeX 16khz)
       5 audio ulaw         ulaw                 100 (G.711 u-law)
"""


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_option_table", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_option_table"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def types(gen: ModuleType) -> dict[str, Any]:
    result: dict[str, Any] = gen.build_types(ET.fromstring(XML))
    return result


def option(types: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = types["endpoint"]["options"][name]
    return found


def test_only_pjsip_conf_objects_of_every_module_are_read(types: dict[str, Any]) -> None:
    assert list(types) == ["endpoint", "identify"]
    assert types["identify"]["module"] == "res_pjsip_endpoint_identifier_ip"


def test_a_yes_no_default_is_a_bool(types: dict[str, Any]) -> None:
    assert option(types, "flag")["kind"] == "bool"


def test_digits_are_an_unsigned_integer_and_a_negative_default_a_signed_one(
    types: dict[str, Any],
) -> None:
    assert (option(types, "count")["kind"], option(types, "count")["min"]) == ("integer", 0)
    assert option(types, "low")["min"] < 0


def test_a_decimal_default_is_a_number(types: dict[str, Any]) -> None:
    assert option(types, "ratio")["kind"] == "number"


def test_an_enumlist_is_an_enumeration_with_its_values(types: dict[str, Any]) -> None:
    assert option(types, "mode") | {} == {
        "kind": "enum",
        "default": "a",
        "values": ["a", "b"],
        "synopsis": "A mode",
    }


def test_an_enumlist_of_name_value_pairs_is_codec_prefs(types: dict[str, Any]) -> None:
    assert option(types, "prefs")["kind"] == "codec_prefs"
    assert option(types, "prefs")["params"] == {
        "prefer": ["pending", "configured"],
        "keep": ["all", "first"],
    }


def test_known_reference_names_point_at_their_type(types: dict[str, Any]) -> None:
    assert option(types, "aors")["target"] == "aor"
    assert types["identify"]["options"]["endpoint"]["target"] == "endpoint"


def test_the_rest_is_a_string_and_overrides_apply(types: dict[str, Any]) -> None:
    assert option(types, "context")["kind"] == "string"
    assert option(types, "context")["default"] == "default"  # override
    assert option(types, "allow")["kind"] == "codecs"  # override


def test_synopses_are_one_line(types: dict[str, Any]) -> None:
    assert option(types, "flag")["synopsis"] == "A flag"


def test_codecs_are_read_from_core_show_codecs_in_id_order(gen: ModuleType) -> None:
    rows = gen.parse_codecs(CODECS)
    assert [row["name"] for row in rows] == ["ulaw", "alaw", "speex16"]


def test_the_dump_is_valid_json_with_one_line_per_option(gen: ModuleType) -> None:
    table = {"format": 1, "codecs": [{"id": 5, "media": "audio", "name": "ulaw"}]}
    table["types"] = gen.build_types(ET.fromstring(XML))
    text = gen.dump(table)
    assert json.loads(text) == table
    assert sum('"kind"' in line for line in text.splitlines()) == 11


def test_the_version_comes_from_the_debian_package(gen: ModuleType) -> None:
    assert gen._short_version("1:22.10.1+dfsg+~cs6.17.60671434-1") == "22.10.1"


def test_main_writes_the_table(gen: ModuleType, tmp_path: Path) -> None:
    xml, codecs, out = tmp_path / "core.xml", tmp_path / "codecs.txt", tmp_path / "table.json"
    xml.write_text(XML)
    codecs.write_text(CODECS)
    gen.main(
        ["--xml", str(xml), "--codecs", str(codecs), "--out", str(out), "--asterisk-version", "1.2"]
    )
    written = json.loads(out.read_text())
    assert written["asterisk_version"] == "1.2"
    assert len(written["xml_sha256"]) == 64
    assert [c["name"] for c in written["codecs"]] == ["ulaw", "alaw", "speex16"]
