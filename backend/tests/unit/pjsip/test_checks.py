"""What Asterisk makes of each object: refused objects, repeated ids, ignored types."""

from __future__ import annotations

from pathlib import Path

from ispbx.pjsip.checks import check_config
from ispbx.pjsip.parser import parse_text

MAIN = Path("/etc/asterisk/pjsip.conf")


def check(text: str):  # type: ignore[no-untyped-def]
    return check_config(parse_text(text, path=MAIN))


def test_an_object_with_an_invalid_value_is_not_loadable_and_says_where() -> None:
    checks = check("[101]\ntype=endpoint\nrtp_timeout=abc\n[102]\ntype=endpoint\n")
    bad = checks.of("endpoint", "101")
    assert bad is not None and not bad.loadable
    assert bad.location == f"{MAIN}:1"
    (refusal,) = bad.refusals
    assert refusal.field == "rtp_timeout"
    good = checks.of("endpoint", "102")
    assert good is not None and good.loadable
    assert any(w.startswith(f"{MAIN}:1: [101]") and "rtp_timeout" in w for w in checks.warnings)


def test_an_unknown_option_names_the_closest_valid_ones() -> None:
    checks = check("[101]\ntype=endpoint\ncontxt=from-internal\n")
    bad = checks.of("endpoint", "101")
    assert bad is not None and not bad.loadable
    assert "context" in bad.refusals[0].suggestions


def test_a_repeated_id_makes_every_object_of_that_type_unloadable_but_not_other_types() -> None:
    text = (
        "[101]\ntype=endpoint\n[102]\ntype=endpoint\n[101]\ntype=aor\n"
        "[102]\ntype=endpoint\ncontext=again\n"
    )
    checks = check(text)
    assert {c.name for c in checks.not_loadable()} == {"101", "102"}
    aor = checks.of("aor", "101")
    assert aor is not None and aor.loadable
    duplicate = [w for w in checks.warnings if "defined twice" in w]
    assert duplicate == [f"{MAIN}:7: " + duplicate[0].split(": ", 1)[1]]  # the repeat's line


def test_a_template_is_never_checked_as_an_object() -> None:
    checks = check("[t](!)\ntype=endpoint\nrtp_timeout=abc\n")
    assert checks.of("endpoint", "t") is None
    assert checks.warnings == ()


def test_a_type_asterisk_does_not_know_is_reported_as_ignored() -> None:
    checks = check("[101]\ntype=Endpoint\n")
    assert checks.of("Endpoint", "101") is None
    assert len(checks.warnings) == 1 and "[101]" in checks.warnings[0]
