"""sorcery.conf guards: a realtime or astdb mapping means the file is not where Asterisk reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from ispbx.manage.guards import sorcery_refusal


def conf(tmp_path: Path, sorcery: str | None) -> Path:
    main = tmp_path / "pjsip.conf"
    main.write_text("")
    if sorcery is not None:
        (tmp_path / "sorcery.conf").write_text(sorcery)
    return main


@pytest.mark.parametrize(
    "sorcery",
    [
        None,
        "[general]\n",
        "[res_pjsip]\ncontact=astdb,registrar\n",  # contacts live in astdb anyway
        "[res_pjsip]\nendpoint=config,pjsip.conf,criteria=type=endpoint\n",
        "[res_pjsip]\nendpoint=config,pjsip.conf,criteria=type=endpoint\nendpoint=realtime,ps\n",
    ],
)
def test_the_file_is_where_asterisk_reads(tmp_path: Path, sorcery: str | None) -> None:
    assert sorcery_refusal(conf(tmp_path, sorcery)) is None


@pytest.mark.parametrize(
    ("sorcery", "words"),
    [
        ("[res_pjsip]\nendpoint=realtime,ps_endpoints\n", "endpoint objects to realtime"),
        ("[res_pjsip]\nauth = realtime,ps_auths\n", "auth objects to realtime"),
        ("[res_pjsip]\naor=astdb,aors\n", "aor objects to astdb"),
        ("[res_pjsip]\nendpoint=config,other.conf,criteria=type=endpoint\n", "another file"),
    ],
)
def test_a_mapping_elsewhere_is_refused_with_the_reason(
    tmp_path: Path, sorcery: str, words: str
) -> None:
    refusal = sorcery_refusal(conf(tmp_path, sorcery))
    assert refusal is not None and words in refusal
    assert "sorcery.conf" in refusal
