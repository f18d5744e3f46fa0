"""Loading keeps every byte, and the document reads the files exactly as the reader does."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tests.unit.pjsip.test_pjsip_parser as parser_tests
from ispbx.manage.document import ConfigRejectedError
from ispbx.pjsip import PjsipConfigError
from ispbx_lab.lab import SAMPLE_PJSIP, generate_pjsip
from tests.unit.manage.strategies import file_sets
from tests.unit.manage.support import MAIN, Files

MULTI_DIR = Path(__file__).parents[2] / "integration" / "pjsip_multi"


def assert_same_as_reader(files: Files) -> None:
    """Unedited render is byte-identical; sections and files agree with the reader (or both
    reject the set, except for duplicate objects, which only the reader checks)."""
    try:
        reader = files.parse()
    except PjsipConfigError as error:
        if "duplicate object" in error.reason:
            document = files.load()
        else:
            with pytest.raises(ConfigRejectedError) as caught:
                files.load()
            assert (caught.value.path, caught.value.line) == (error.path, error.line)
            return
    else:
        document = files.load()
        assert document.sections() == reader.sections
        assert document.files[: len(reader.files)] == reader.files
    for path in document.files:
        assert document.render(path) == files.read(path)
    assert document.changed_files() == {}


# -- corpora -----------------------------------------------------------------------------


def multi_corpus() -> Files:
    return Files({p.relative_to(MULTI_DIR): p.read_bytes() for p in MULTI_DIR.rglob("*.conf")})


def generated_corpus(count: int, *, crlf: bool = False, bom: bool = False) -> Files:
    """generate_pjsip(count) cut into a main file and three glob-included files."""
    blocks = generate_pjsip(count).split("\n[")
    head, body = blocks[:4], blocks[4:]
    third = max(1, len(body) // 3)
    files: dict[str, str] = {"pjsip.conf": "\n[".join(head) + '\n#include "users/*.conf"\n'}
    for number in range(3):
        chunk = body[number * third : None if number == 2 else (number + 1) * third]
        files[f"users/{number}.conf"] = "[" + "\n[".join(chunk)
    if crlf:
        files = {name: text.replace("\n", "\r\n") for name, text in files.items()}
    if bom:
        files["pjsip.conf"] = "\ufeff" + files["pjsip.conf"]
    return Files(files)


def parser_test_texts() -> list[tuple[str, dict[str, str]]]:
    """The (text, files) of every parse()/rejected() call in test_pjsip_parser.py."""
    tree = ast.parse(inspect.getsource(parser_tests))
    namespace: dict[str, Any] = vars(parser_tests)
    cases = []
    for node in ast.walk(tree):
        is_call = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        if not is_call or node.func.id not in ("parse", "rejected") or not node.args:  # type: ignore[union-attr]
            continue
        try:
            args = [
                eval(compile(ast.Expression(a), "<corpus>", "eval"), namespace) for a in node.args
            ]
        except NameError:
            continue  # built from a test's local variable
        cases.append((args[0], args[1] if len(args) > 1 else {}))
    return cases


PARSER_TEXTS = parser_test_texts()


def test_the_parser_corpus_is_found() -> None:
    assert len(PARSER_TEXTS) > 60


@pytest.mark.parametrize(("text", "extra"), PARSER_TEXTS, ids=range(len(PARSER_TEXTS)))
def test_parser_test_texts(text: str, extra: dict[str, str]) -> None:
    assert_same_as_reader(Files({"pjsip.conf": text, **extra}))


def test_multi_file_integration_corpus() -> None:
    assert_same_as_reader(multi_corpus())


def test_sample_config() -> None:
    assert_same_as_reader(Files({"pjsip.conf": SAMPLE_PJSIP.read_bytes()}))


@pytest.mark.parametrize(("crlf", "bom"), [(False, False), (True, False), (False, True)])
def test_generated_lab_config_over_glob_includes(crlf: bool, bom: bool) -> None:
    files = generated_corpus(300, crlf=crlf, bom=bom)
    assert_same_as_reader(files)
    assert len(files.load().object_ids("endpoint")) == 300


# -- bytes -------------------------------------------------------------------------------

MESSY = (
    b"\xef\xbb\xbf; BOM, then a comment \xff\xfe invalid UTF-8\r\n"
    b";-- block ;-- nested --; still a comment\n"
    b"[ghost]\ntype=endpoint --;\n"
    b";------------------------------------- a ruler, not a block\n"
    b"[tpl](!)\r\n"
    b"type = endpoint\r\n"
    b"\tcontext\t=>\tfrom-tpl\t; tabs and =>\n"
    b"allow = ulaw\n"
    b"[tpl2](!,tpl)\n"
    b"language=fr\n"
    b"[100](tpl,tpl2)\n"
    b"callerid = Bob \\; Jr <100> ; escaped semicolon\n"
    b"context = a;-- inline --;b\n"
    b"allow += ,gsm\n"
    b"skipped line without equals\n"
    b"description = nul\x00cut here\n"
    b"[100]\ntype=aor\n"
    b"[100](+)\nset_var = A=1\n"
    b"[100](+type=aor)\nmax_contacts = 2\n"
    b'#include "inc.conf"\n'
    b"#tryinclude missing.conf\n"
    b"#include sub/{x,y}.conf\n"
    b"#exec /bin/false\n"
    b"[200](tpl)\nlanguage = \xc3\xa9\xff"  # no final newline
)


def test_messy_bytes_survive_and_read_as_the_reader_reads_them() -> None:
    files = Files(
        {
            "pjsip.conf": MESSY,
            "inc.conf": b"callerid = continues the open section\r\n[300](tpl)\n",
            "sub/x.conf": b"#include nested.conf\n",  # relative to the main file's dir
            "nested.conf": b"[n1]\ntype=aor\n",
            "sub/y.conf": b"",
        }
    )
    assert_same_as_reader(files)
    document = files.load()
    assert document.get("endpoint", "100").options["context"] == "ab"
    assert document.get("endpoint", "100").options["allow"] == "ulaw,gsm"
    assert document.get("aor", "100").options["max_contacts"] == "2"
    assert document.get("aor", "n1").file == MAIN.parent / "nested.conf"


# -- generated files ---------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        *'[]()!+,=>;-\\#\n \t"<>*{}ab:',
        "\r\n",
        "\ufeff",
        "\x00",
        "\udcff",
        "type=endpoint",
        "type=aor",
        "#include inc.conf",
        "#tryinclude inc.conf",
        ";--",
        "--;",
        "(+type=aor)",
        "(+)",
        "(!)",
        "[a]",
        "[a](a)",
        "x+=1",
        "\\;",
    ]
)


def soup(max_tokens: int) -> st.SearchStrategy[bytes]:
    return st.lists(TOKENS, max_size=max_tokens).map(
        lambda t: "".join(t).encode("utf-8", "surrogateescape")
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(soup(160), soup(60))
def test_token_soup_reads_as_the_reader_reads_it(main: bytes, included: bytes) -> None:
    assert_same_as_reader(Files({"pjsip.conf": main, "inc.conf": included}))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(file_sets())
def test_generated_file_sets_read_as_the_reader_reads_them(files: dict[str, bytes]) -> None:
    memory = Files(files)
    try:
        memory.parse()
    except PjsipConfigError:
        assume(False)
    assert_same_as_reader(memory)
