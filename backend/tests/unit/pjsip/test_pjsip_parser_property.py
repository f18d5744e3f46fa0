"""Property tests of the pjsip.conf parser (hypothesis)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ispbx.pjsip import PjsipConfigError, parse_text
from ispbx.pjsip.options import OptionTable

KEYS = ["context", "callerid", "Language", "set_var", "aors", "Direct_Media", "x_1"]
CODECS = ["ulaw", "alaw", "gsm", "g722", "all"]
VALUE_CHARS = st.sampled_from(list("abcXYZ019 <>@.:,=-_/;\\!\"'"))
NAME_CHARS = st.sampled_from(list("abcXYZ019-_."))


def no_files(path: Path) -> str:
    raise FileNotFoundError(path)


def no_glob(pattern: str) -> list[Path]:
    return []


def render_value(value: str) -> str:
    return value.replace(";", "\\;")


values = st.text(VALUE_CHARS, max_size=20).map(lambda v: v.strip(" \t"))
options = st.lists(st.tuples(st.sampled_from(KEYS), values), max_size=6)
sections = st.lists(
    st.tuples(st.text(NAME_CHARS, min_size=1, max_size=8), options), min_size=1, max_size=6
)


@given(sections)
def test_rendered_sections_parse_back_to_the_same_own_options(
    generated: list[tuple[str, list[tuple[str, str]]]],
) -> None:
    text = "".join(
        f"[{name}]\n" + "".join(f"{key} = {render_value(value)}\n" for key, value in opts)
        for name, opts in generated
    )
    config = parse_text(text, read_text=no_files, glob=no_glob)
    assert [(s.name, list(s.options)) for s in config.sections] == [
        (name, [(key.lower(), value) for key, value in opts]) for name, opts in generated
    ]
    assert config.warnings == ()


codec_lines = st.lists(
    st.tuples(st.booleans(), st.lists(st.sampled_from(CODECS), min_size=1, max_size=3)),
    max_size=8,
)


def codec_model(lines: list[tuple[bool, list[str]]]) -> list[str]:
    """An ordered set; ``all`` stands for every codec Asterisk knows, in its order."""
    everything = OptionTable.load().codecs_in_all
    allowed: list[str] = []
    for allowing, names in lines:
        for name in names:
            expanded = everything if name == "all" else (name,)
            if allowing:
                allowed += [codec for codec in expanded if codec not in allowed]
            else:
                allowed = [codec for codec in allowed if codec not in expanded]
    return allowed


@given(codec_lines, st.integers(min_value=0, max_value=8))
def test_codec_list_matches_an_ordered_set_model(
    lines: list[tuple[bool, list[str]]], split: int
) -> None:
    rendered = [f"{'allow' if allowing else 'disallow'}={','.join(n)}\n" for allowing, n in lines]
    text = "[tpl](!)\n" + "".join(rendered[:split])
    text += "[200](tpl)\ntype=endpoint\n" + "".join(rendered[split:])
    options = parse_text(text, read_text=no_files, glob=no_glob).endpoint_config("200")
    assert options is not None
    if lines:
        assert options["allow"] == ",".join(codec_model(lines))
    else:
        assert "allow" not in options


CONFIG_TOKENS = st.sampled_from(
    [*'[]()!+,=>;-\\#\n \t"<>*{}ab:\ufeff\x00', "type=endpoint", "#include", ";--", "--;"]
)


def config_text(max_tokens: int) -> st.SearchStrategy[str]:
    return st.lists(CONFIG_TOKENS, max_size=max_tokens).map("".join)


@settings(max_examples=300)
@given(config_text(200), config_text(60))
def test_parsing_raises_only_pjsip_config_error(text: str, included: str) -> None:
    def read_text(path: Path) -> str:
        if path.name == "inc.conf":
            return included
        raise FileNotFoundError(path)

    def glob(pattern: str) -> list[Path]:
        return [Path("/etc/asterisk/inc.conf")]

    try:
        config = parse_text(
            "#tryinclude inc.conf\n" + text,
            path=Path("/etc/asterisk/pjsip.conf"),
            read_text=read_text,
            glob=glob,
        )
    except PjsipConfigError as error:
        assert str(error)
        return
    for kind in ("endpoint", "auth", "aor"):
        for name, found in config.objects(kind).items():
            assert found.name == name
            assert dict(found.options).get("type") == kind
    for name in config.endpoint_names():
        assert config.endpoint_config(name) is not None
