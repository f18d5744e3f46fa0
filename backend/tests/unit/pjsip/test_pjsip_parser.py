"""Unit tests of the pjsip.conf parser: each rule of docs pjsip-conf-format.md, plus the
Asterisk behaviours read from main/config.c that the parser copies."""

from __future__ import annotations

import fnmatch
import os.path
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from ispbx.pjsip import PjsipConfig, PjsipConfigError, Section, parse_file, parse_text

CONF_DIR = Path("/etc/asterisk")
MAIN = CONF_DIR / "pjsip.conf"


class MemoryFiles:
    """In-memory files for read_text/glob; records every read."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = {Path(os.path.normpath(CONF_DIR / name)): text for name, text in files.items()}
        self.reads: list[Path] = []

    def read_text(self, path: Path) -> str:
        self.reads.append(path)
        try:
            return self.files[Path(os.path.normpath(path))]
        except KeyError:
            raise FileNotFoundError(path) from None

    def glob(self, pattern: str) -> list[Path]:
        return sorted(p for p in self.files if fnmatch.fnmatchcase(str(p), pattern))


def parse(text: str, files: dict[str, str] | None = None) -> PjsipConfig:
    memory = MemoryFiles(files or {})
    return parse_text(text, path=MAIN, read_text=memory.read_text, glob=memory.glob)


def rejected(text: str, files: dict[str, str] | None = None) -> PjsipConfigError:
    with pytest.raises(PjsipConfigError) as caught:
        parse(text, files)
    return caught.value


def section(config: PjsipConfig, name: str, index: int = 0) -> Section:
    return [s for s in config.sections if s.name == name][index]


ENDPOINT_101 = """
[101]
type=endpoint
auth=101
aors=101
[101]
type=auth
username=101
password=secret
[101]
type=aor
max_contacts=1
"""


# -- sections ----------------------------------------------------------------------------


def test_sections_sharing_a_name_keep_their_own_types() -> None:
    config = parse(ENDPOINT_101)
    assert [s.type for s in config.sections] == ["endpoint", "auth", "aor"]
    assert config.endpoint_names() == ["101"]
    assert config.auth("101") == {"type": "auth", "username": "101", "password": "secret"}
    assert config.aor("101") == {"type": "aor", "max_contacts": "1"}
    assert (config.endpoint_config("101") or {})["aors"] == "101"


def test_type_can_come_from_a_template() -> None:
    config = parse("[tpl](!)\ntype=endpoint\ncontext=a\n[200](tpl)\n")
    assert config.endpoint_names() == ["200"]
    assert config.endpoint_config("200") == {"type": "endpoint", "context": "a"}


def test_first_type_line_decides_the_object_type() -> None:
    config = parse("[tpl](!)\ntype=aor\n[200](tpl)\ntype=endpoint\n")
    assert config.endpoint_names() == []
    assert (config.aor("200") or {})["type"] == "aor"


def test_type_value_is_case_sensitive() -> None:
    assert parse("[200]\ntype=Endpoint\n").endpoint_names() == []


def test_template_is_not_an_object_and_is_not_listed() -> None:
    config = parse("[tpl](!)\ntype=endpoint\n[200](tpl)\n")
    assert section(config, "tpl").is_template
    assert config.endpoint_names() == ["200"]
    assert config.endpoint_config("tpl") is None
    assert list(config.objects("endpoint")) == ["200"]


def test_parents_apply_in_order_then_own_options() -> None:
    config = parse("[t1](!)\ntype=endpoint\na=1\nb=1\n[t2](!)\nb=2\nc=2\n[200](t1,t2)\nc=3\nd=3\n")
    assert section(config, "200").parents == ("t1", "t2")
    assert section(config, "200").options == (("c", "3"), ("d", "3"))
    assert config.endpoint_config("200") == {
        "type": "endpoint",
        "a": "1",
        "b": "2",
        "c": "3",
        "d": "3",
    }


def test_later_template_beats_earlier_for_single_valued_option() -> None:
    config = parse("[t1](!)\ncontext=one\n[t2](!)\ncontext=two\n[200](t1,t2)\ntype=endpoint\n")
    assert (config.endpoint_config("200") or {})["context"] == "two"


def test_own_option_beats_inherited_one() -> None:
    config = parse("[t](!)\ntype=endpoint\ncontext=tpl\n[200](t)\ncontext=own\n")
    assert (config.endpoint_config("200") or {})["context"] == "own"


def test_template_can_inherit_and_chains_have_any_depth() -> None:
    config = parse(
        "[base](!)\ntype=endpoint\na=base\n[mid](!,base)\nb=mid\n"
        "[top](!,mid)\nc=top\n[200](top)\nd=own\n"
    )
    assert section(config, "mid").is_template
    assert section(config, "mid").parents == ("base",)
    assert config.endpoint_config("200") == {
        "type": "endpoint",
        "a": "base",
        "b": "mid",
        "c": "top",
        "d": "own",
    }


def test_template_names_match_case_insensitively() -> None:
    config = parse("[Tpl](!)\ntype=endpoint\n[200](tPL)\n")
    assert config.endpoint_names() == ["200"]


def test_non_template_section_can_be_inherited_from() -> None:
    config = parse("[base]\ntype=endpoint\ncontext=x\n[200](base)\n")
    assert config.endpoint_names() == ["base", "200"]


def test_inheritance_copies_values_when_the_section_is_defined() -> None:
    config = parse("[base]\ntype=aor\n[child](base)\n[base](+)\nmax_contacts=5\n")
    assert config.aor("child") == {"type": "aor"}
    assert config.aor("base") == {"type": "aor", "max_contacts": "5"}


def test_plus_appends_to_the_first_earlier_section_with_that_name() -> None:
    config = parse(ENDPOINT_101 + "[101](+)\ncontext=added\n")
    assert len(config.sections) == 3
    assert section(config, "101", 0).options[-1] == ("context", "added")
    assert (config.endpoint_config("101") or {})["context"] == "added"
    assert "context" not in (config.aor("101") or {})


def test_plus_skips_templates() -> None:
    error = rejected("[t](!)\ntype=endpoint\n[t](+)\ncontext=x\n")
    assert "category 't' does not exist" in error.reason
    assert error.line == 3


def test_plus_with_a_filter_picks_the_matching_section() -> None:
    config = parse(ENDPOINT_101 + "[101](+type=aor)\nqualify_frequency=30\n")
    assert (config.aor("101") or {})["qualify_frequency"] == "30"
    assert "qualify_frequency" not in (config.endpoint_config("101") or {})


def test_plus_without_an_earlier_section_rejects_the_file() -> None:
    error = rejected("[a]\ntype=aor\n[b](+)\nx=1\n")
    assert (error.path, error.line) == (MAIN, 3)


def test_unknown_template_rejects_the_whole_file() -> None:
    error = rejected("[200](missing)\ntype=endpoint\n")
    assert (error.path, error.line) == (MAIN, 1)
    assert "'missing' does not exist" in error.reason
    assert str(error) == f"{MAIN}:1: {error.reason}"


def test_template_must_be_defined_before_use() -> None:
    rejected("[200](tpl)\ntype=endpoint\n[tpl](!)\ncontext=x\n")


def test_space_in_parent_list_is_part_of_the_name() -> None:
    rejected("[tpl](!)\n[200](!, tpl)\n")


def test_unclosed_section_header_rejects_the_whole_file() -> None:
    error = rejected("[100]\ntype=aor\n[101\ntype=aor\n")
    assert error.line == 3
    assert "']'" in error.reason


def test_unclosed_parenthesis_rejects_the_whole_file() -> None:
    assert "')'" in rejected("[101](!\ntype=aor\n").reason


def test_empty_parent_name_inherits_from_the_first_section() -> None:
    config = parse("[a]\ntype=aor\nmax_contacts=2\n[b]()\n")
    assert config.aor("b") == {"type": "aor", "max_contacts": "2"}


def test_text_after_header_without_parenthesis_is_ignored() -> None:
    config = parse("[200] (!)\ntype=endpoint\n")
    assert not section(config, "200").is_template
    assert config.endpoint_names() == ["200"]


def test_option_before_any_section_rejects_the_file() -> None:
    assert rejected("type=endpoint\n[200]\n").line == 1


def test_line_without_equals_is_skipped_with_a_warning() -> None:
    config = parse("[200]\ntype=endpoint\nbogus line\ncontext=x\n")
    assert config.warnings == (f"{MAIN}:3: No '=' (equal sign) in line, skipped",)
    assert (config.endpoint_config("200") or {})["context"] == "x"


def test_empty_option_name_is_skipped_with_a_warning() -> None:
    config = parse("[200]\ntype=endpoint\n = x\n")
    assert section(config, "200").options == (("type", "endpoint"),)
    assert config.warnings[0].startswith(f"{MAIN}:3: ")


def test_a_duplicate_endpoint_does_not_reject_the_file() -> None:
    """Asterisk skips the endpoint type, not the file (checks.py marks the objects)."""
    config = parse("[200]\ntype=endpoint\n[200]\ntype=endpoint\n[200]\ntype=aor\n")
    assert config.endpoint_names() == ["200"]
    assert config.aor("200") == {"type": "aor"}


def test_names_differing_in_case_are_different_objects() -> None:
    config = parse("[Bob]\ntype=endpoint\n[bob]\ntype=endpoint\n")
    assert config.endpoint_names() == ["Bob", "bob"]


def test_section_records_file_and_line() -> None:
    config = parse("\n\n[200]\ntype=aor\n")
    assert (section(config, "200").file, section(config, "200").line) == (MAIN, 3)


# -- options -----------------------------------------------------------------------------


def test_equals_and_arrow_forms_are_trimmed() -> None:
    config = parse("[200]\n  type  =  endpoint  \ncontext=>  inside \ncallerid => Bob <1>\n")
    assert section(config, "200").options == (
        ("type", "endpoint"),
        ("context", "inside"),
        ("callerid", "Bob <1>"),
    )


def test_keys_are_lower_cased() -> None:
    config = parse("[200]\nType=endpoint\nDirect_Media=no\n")
    assert config.endpoint_config("200") == {"type": "endpoint", "direct_media": "no"}


def test_repeated_single_valued_option_last_one_wins() -> None:
    config = parse("[200]\ntype=endpoint\nlanguage=en\nlanguage=de\n")
    assert (config.endpoint_config("200") or {})["language"] == "de"


def test_comma_list_on_one_line_is_one_value_and_last_line_wins() -> None:
    config = parse("[200]\ntype=endpoint\naors=a\naors=b,c\nauth=x\nmailboxes=1@d\nmailboxes=2@d\n")
    options = config.endpoint_config("200") or {}
    assert (options["aors"], options["auth"], options["mailboxes"]) == ("b,c", "x", "2@d")


def test_set_var_match_and_contact_accumulate() -> None:
    config = parse(
        "[t](!)\nset_var=A=1\n"
        "[200](t)\ntype=endpoint\nset_var=B=2\n"
        "[id]\ntype=identify\nmatch=10.0.0.1\nmatch=10.0.0.2,10.0.0.3\n"
        "[a]\ntype=aor\ncontact=sip:a@h\ncontact=sip:b@h\n"
    )
    assert (config.endpoint_config("200") or {})["set_var"] == "A=1,B=2"
    assert config.objects("identify")["id"].options["match"] == "10.0.0.1,10.0.0.2,10.0.0.3"
    assert (config.aor("a") or {})["contact"] == "sip:a@h,sip:b@h"


def test_codecs_apply_line_by_line() -> None:
    config = parse("[200]\ntype=endpoint\nallow=ulaw\ndisallow=all\nallow=gsm\n")
    options = config.endpoint_config("200") or {}
    assert (options["allow"], options["disallow"]) == ("gsm", "all")


def test_template_codecs_apply_before_own_codecs() -> None:
    config = parse("[t](!)\ndisallow=all\nallow=ulaw\n[200](t)\ntype=endpoint\nallow=gsm\n")
    assert (config.endpoint_config("200") or {})["allow"] == "ulaw,gsm"


def test_codec_list_adds_and_removes_each_item() -> None:
    config = parse(
        "[200]\ntype=endpoint\nallow=ulaw,alaw\nallow=gsm|g722\ndisallow=alaw\nallow=ulaw\n"
    )
    assert (config.endpoint_config("200") or {})["allow"] == "ulaw,gsm,g722"


def test_codec_names_ignore_case_bang_and_framing() -> None:
    config = parse("[200]\ntype=endpoint\nallow=ULAW:20, alaw\nallow=!alaw\n")
    assert (config.endpoint_config("200") or {})["allow"] == "ulaw"


def test_allow_all_means_every_codec_asterisk_knows_and_a_later_disallow_removes_one() -> None:
    config = parse("[200]\ntype=endpoint\nallow=all\nallow=ulaw\ndisallow=gsm\n")
    codecs = (config.endpoint_config("200") or {})["allow"].split(",")
    assert codecs[:4] == ["amr", "amrwb", "codec2", "g723"]  # Asterisk's own order
    assert "ulaw" in codecs and "g722" in codecs
    assert "gsm" not in codecs


def test_disallow_all_leaves_an_empty_allow() -> None:
    config = parse("[200]\ntype=endpoint\nallow=ulaw\ndisallow=all\n")
    assert (config.endpoint_config("200") or {})["allow"] == ""


def test_no_codec_lines_means_no_allow_key() -> None:
    assert "allow" not in (parse("[200]\ntype=endpoint\n").endpoint_config("200") or {})


def test_plus_equals_extends_the_previous_value() -> None:
    config = parse("[t](!)\nallow=ulaw\n[200](t)\ntype=endpoint\nallow+=,alaw\nx+=new\n")
    assert section(config, "200").options == (
        ("allow", "ulaw,alaw"),
        ("type", "endpoint"),
        ("x", "new"),
    )
    assert (config.endpoint_config("200") or {})["allow"] == "ulaw,alaw"


def test_leading_backslash_escapes_the_first_character() -> None:
    config = parse("[200]\n\\[odd]=1\n")
    assert section(config, "200").options == (("[odd]", "1"),)
    rejected("[200]\n\\ x=1\n")


def test_lookups_return_none_for_other_types_and_unknown_names() -> None:
    config = parse(ENDPOINT_101)
    assert config.endpoint_config("nope") is None
    assert config.auth("nope") is None
    assert config.objects("transport") == {}
    assert config.objects("auth")["101"].section.line == 6


def test_lookup_results_are_copies() -> None:
    config = parse(ENDPOINT_101)
    (config.endpoint_config("101") or {})["aors"] = "changed"
    config.objects("endpoint").clear()
    assert (config.endpoint_config("101") or {})["aors"] == "101"


# -- comments and escapes ----------------------------------------------------------------


def test_semicolon_starts_a_comment() -> None:
    config = parse("; head\n[200] ; note\ntype=endpoint ; why\ncontext=x;y\n")
    assert section(config, "200").options == (("type", "endpoint"), ("context", "x"))


def test_escaped_semicolon_is_a_literal_semicolon() -> None:
    config = parse("[200]\ntype=endpoint\ncallerid=Bob \\; Jr <1>\n")
    assert (config.endpoint_config("200") or {})["callerid"] == "Bob ; Jr <1>"


def test_block_comment_runs_across_lines() -> None:
    config = parse("[200]\ntype=endpoint\n;-- context=hidden\nlanguage=fr\n--;\ncontext=shown\n")
    assert section(config, "200").options == (("type", "endpoint"), ("context", "shown"))


def test_block_comment_inside_a_line_keeps_text_around_it() -> None:
    config = parse("[200]\ntype=endpoint\ncontext=a;-- note --;b\n")
    assert (config.endpoint_config("200") or {})["context"] == "ab"


def test_text_after_a_multi_line_block_comment_is_read() -> None:
    config = parse("[200]\n;-- one\ntwo --; type=endpoint\n")
    assert config.endpoint_names() == ["200"]


def test_ruler_line_is_an_ordinary_line_comment() -> None:
    config = parse(";-----------\n[200]\n;---- x ----\ntype=endpoint\n")
    assert config.endpoint_names() == ["200"]


def test_block_comments_nest() -> None:
    config = parse("[200]\n;-- a ;-- b --; context=hidden --;\ntype=endpoint\n")
    assert section(config, "200").options == (("type", "endpoint"),)


def test_unterminated_block_comment_warns() -> None:
    config = parse("[200]\ntype=endpoint\n;-- never closed\ncontext=x\n")
    assert config.warnings == (f"{MAIN}:3: unterminated ';--' block comment",)
    assert "context" not in (config.endpoint_config("200") or {})


def test_stray_block_comment_end_hides_lines_until_a_block_comment_start() -> None:
    config = parse("[200]\ntype=endpoint\nlanguage=x--;\ncontext=hidden\n;--\ncallerid=seen\n")
    assert section(config, "200").options == (
        ("type", "endpoint"),
        ("language", "x--;"),
        ("callerid", "seen"),
    )
    assert config.warnings[0].startswith(f"{MAIN}:3: '--;' without an open ';--'")


def test_utf8_bom_at_file_start_is_ignored() -> None:
    assert parse("\ufeff[200]\ntype=endpoint\n").endpoint_names() == ["200"]


def test_overlong_line_is_skipped_with_a_warning() -> None:
    config = parse(f"[200]\ntype=endpoint\ncallerid={'x' * 9000}\n")
    assert "callerid" not in (config.endpoint_config("200") or {})
    assert config.warnings[0].startswith(f"{MAIN}:3: line longer than")


def test_crlf_line_endings_are_accepted() -> None:
    config = parse("[200]\r\ntype=endpoint\r\ncontext=x\r\n")
    assert config.endpoint_config("200") == {"type": "endpoint", "context": "x"}


# -- includes ----------------------------------------------------------------------------


def test_include_is_spliced_in_and_continues_the_open_section() -> None:
    config = parse(
        "[200]\ntype=endpoint\n#include extra.conf\n",
        {"extra.conf": "context=from-include\n[300]\ntype=aor\n"},
    )
    assert (config.endpoint_config("200") or {})["context"] == "from-include"
    assert config.aor("300") == {"type": "aor"}
    assert section(config, "300").file == CONF_DIR / "extra.conf"


def test_after_an_include_the_includer_continues_its_own_open_section() -> None:
    config = parse(
        "[200]\ntype=endpoint\n#include extra.conf\ncontext=back\n",
        {"extra.conf": "[300]\ntype=aor\n"},
    )
    assert (config.endpoint_config("200") or {})["context"] == "back"
    assert config.aor("300") == {"type": "aor"}


@pytest.mark.parametrize("argument", ['"extra.conf"', "<extra.conf>", "extra.conf"])
def test_include_file_name_may_be_quoted(argument: str) -> None:
    config = parse(f"#include {argument}\n", {"extra.conf": "[300]\ntype=aor\n"})
    assert config.aor("300") == {"type": "aor"}


def test_missing_include_rejects_the_whole_file() -> None:
    error = rejected("[200]\ntype=endpoint\n#include nothere.conf\n")
    assert (error.path, error.line) == (MAIN, 3)
    assert "nothere.conf" in error.reason


def test_missing_tryinclude_is_skipped_silently() -> None:
    config = parse("[200]\ntype=endpoint\n#tryinclude nothere.conf\n")
    assert config.endpoint_names() == ["200"]
    assert config.warnings == ()


def test_include_of_a_directory_warns_and_counts_as_missing(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    main = tmp_path / "pjsip.conf"
    main.write_text("[200]\ntype=endpoint\n#tryinclude dir\n")
    config = parse_file(main)
    assert "not a regular file" in config.warnings[0]
    main.write_text("[200]\ntype=endpoint\n#include dir\n")
    with pytest.raises(PjsipConfigError):
        parse_file(main)


def test_glob_include_reads_matches_in_sorted_order() -> None:
    config = parse(
        '#include "pjsip.d/*.conf"\n',
        {"pjsip.d/b.conf": "[b]\ntype=aor\n", "pjsip.d/a.conf": "[a]\ntype=aor\n"},
    )
    assert [s.name for s in config.sections] == ["a", "b"]


def test_glob_include_matching_nothing_is_missing() -> None:
    rejected('#include "pjsip.d/*.conf"\n')
    assert parse('#tryinclude "pjsip.d/*.conf"\n').sections == ()


def test_brace_pattern_expands_each_alternative() -> None:
    config = parse(
        "#include {b,a}.conf\n",
        {"a.conf": "[a]\ntype=aor\n", "b.conf": "[b]\ntype=aor\n"},
    )
    assert [s.name for s in config.sections] == ["b", "a"]


def test_relative_include_in_a_nested_file_is_relative_to_the_config_dir() -> None:
    config = parse(
        "#include sub/first.conf\n",
        {"sub/first.conf": "#include second.conf\n", "second.conf": "[s]\ntype=aor\n"},
    )
    assert config.aor("s") == {"type": "aor"}


def test_absolute_include_path_is_used_as_is() -> None:
    memory = MemoryFiles({})
    memory.files[Path("/srv/other.conf")] = "[o]\ntype=aor\n"
    config = parse_text(
        "#include /srv/other.conf\n", path=MAIN, read_text=memory.read_text, glob=memory.glob
    )
    assert config.aor("o") == {"type": "aor"}


def test_files_lists_every_file_read() -> None:
    config = parse(
        "#include a.conf\n#tryinclude missing.conf\n",
        {"a.conf": "#include b.conf\n", "b.conf": ""},
    )
    assert config.files == (MAIN, CONF_DIR / "a.conf", CONF_DIR / "b.conf")


def test_file_including_itself_is_an_error() -> None:
    error = rejected("#include loop.conf\n", {"loop.conf": "[x]\ntype=aor\n#include loop.conf\n"})
    assert (error.path, error.line) == (CONF_DIR / "loop.conf", 3)
    assert "recursion" in error.reason


def test_main_file_including_itself_is_an_error() -> None:
    assert "recursion" in rejected("#include pjsip.conf\n", {"pjsip.conf": ""}).reason


def test_include_depth_beyond_ten_levels_fails_in_the_deepest_file() -> None:
    chain = {f"f{n}.conf": f"[s{n}]\ntype=aor\n#include f{n + 1}.conf\n" for n in range(1, 12)}
    config = parse("#include f1.conf\n", chain)
    assert [s.name for s in config.sections] == [f"s{n}" for n in range(1, 11)]
    assert "Maximum include level (10) exceeded" in config.warnings[0]
    assert config.warnings[1].startswith(f"{CONF_DIR / 'f10.conf'}:3: ")


def test_error_inside_an_included_file_only_stops_that_file() -> None:
    config = parse(
        "#include bad.conf\n[after]\ntype=aor\n",
        {"bad.conf": "[ok]\ntype=aor\n[x](missing)\n[lost]\ntype=aor\n"},
    )
    assert [s.name for s in config.sections] == ["ok", "after"]
    assert config.warnings[0].startswith(f"{CONF_DIR / 'bad.conf'}:3: ")


def test_exec_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    main = tmp_path / "pjsip.conf"
    main.write_text(f"#exec /usr/bin/touch {marker}\n#exec touch {marker}\n[200]\ntype=endpoint\n")
    config = parse_file(main)
    assert not marker.exists()
    assert config.endpoint_names() == ["200"]
    assert all("#exec is never run" in warning for warning in config.warnings)


def test_unknown_directive_warns() -> None:
    config = parse("#bogus x\n#include\n[200]\ntype=endpoint\n")
    assert len(config.warnings) == 2
    assert config.endpoint_names() == ["200"]


def test_real_files_with_glob_and_nested_relative_include(tmp_path: Path) -> None:
    (tmp_path / "pjsip.d").mkdir()
    (tmp_path / "common").mkdir()
    (tmp_path / "pjsip.conf").write_text(
        "[ep](!)\ntype=endpoint\ncontext=office\n#include pjsip.d/*.conf\n"
    )
    (tmp_path / "pjsip.d" / "10-users.conf").write_text(
        "[101](ep)\naors=101\n#include common/codecs.conf\n"
    )
    (tmp_path / "pjsip.d" / "20-aors.conf").write_text("[101]\ntype=aor\n")
    (tmp_path / "pjsip.d" / "notes.txt").write_text("[junk]\ntype=aor\n")
    (tmp_path / "common" / "codecs.conf").write_text("disallow=all\nallow=ulaw\n")
    config = parse_file(tmp_path / "pjsip.conf")
    assert config.endpoint_config("101") == {
        "type": "endpoint",
        "context": "office",
        "aors": "101",
        "allow": "ulaw",
        "disallow": "all",
    }
    assert config.aor("101") == {"type": "aor"}
    assert config.files == (
        tmp_path / "pjsip.conf",
        tmp_path / "pjsip.d" / "10-users.conf",
        tmp_path / "common" / "codecs.conf",
        tmp_path / "pjsip.d" / "20-aors.conf",
    )


def test_unreadable_main_file_raises(tmp_path: Path) -> None:
    with pytest.raises(PjsipConfigError) as caught:
        parse_file(tmp_path / "absent.conf")
    assert caught.value.path == tmp_path / "absent.conf"
    assert caught.value.line is None


def test_parse_file_uses_injected_reader() -> None:
    memory = MemoryFiles({"pjsip.conf": "[200]\ntype=endpoint\n"})
    config = parse_file(MAIN, read_text=memory.read_text, glob=memory.glob)
    assert config.endpoint_names() == ["200"]


# -- scale -------------------------------------------------------------------------------


def big_file(count: int) -> str:
    parts = [
        "[ep](!)\ntype=endpoint\ncontext=internal\ndisallow=all\nallow=ulaw,alaw\n",
        "[au](!)\ntype=auth\nauth_type=userpass\n[ao](!)\ntype=aor\nmax_contacts=1\n",
    ]
    for number in range(1000, 1000 + count):
        parts.append(
            f"[{number}](ep)\nauth={number}\naors={number}\ncallerid=U {number} <{number}>\n"
            f"[{number}](au)\nusername={number}\npassword=pw{number} ; secret\n"
            f"[{number}](ao)\n"
        )
    return "".join(parts)


T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def test_five_thousand_endpoints_parse_and_resolve_quickly() -> None:
    text = big_file(5000)
    config, parse_seconds = timed(lambda: parse(text))
    names = config.endpoint_names()
    resolved, resolve_seconds = timed(lambda: [config.endpoint_config(n) for n in names])
    assert len(names) == 5000
    assert resolved[0] == {
        "type": "endpoint",
        "context": "internal",
        "allow": "ulaw,alaw",
        "disallow": "all",
        "auth": "1000",
        "aors": "1000",
        "callerid": "U 1000 <1000>",
    }
    assert parse_seconds < 1.0
    assert resolve_seconds < 0.5
