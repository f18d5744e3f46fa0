"""Random edit sequences on random messy file sets: after every edit the reader accepts the
rendered candidate, reads exactly what the edit meant for the edited object and exactly what
it read before for every other object, and reads the same sections as the document. A refused
edit changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ispbx.manage.document import (
    ConfigDocument,
    DuplicateObjectError,
    InvalidValueError,
    UnknownTemplateError,
    UnsafeEditError,
)
from ispbx.pjsip import PjsipConfigError
from ispbx.pjsip.shown import shown_set_var
from tests.unit.manage.strategies import OBJECT_NAMES, file_sets
from tests.unit.manage.support import MAIN, Files, effective

SINGLE_KEYS = ["context", "language", "callerid", "max_contacts", "password", "Language"]
VALUES = ["x", "new value", "semi;colon", "<7>", "é", "trailing-", "back\\slash", ">gt"]
CODECS = ["ulaw", "alaw", "gsm", "g722", "opus"]
TEMPLATES = ["tpl-a", "tpl-b", "tpl-c"]
REFUSALS = (UnsafeEditError, DuplicateObjectError, UnknownTemplateError, InvalidValueError)


@dataclass(frozen=True)
class Op:
    kind: str
    key: str = ""
    values: tuple[str, ...] = ()


ops = st.one_of(
    st.builds(Op, st.just("set"), st.sampled_from(SINGLE_KEYS), st.tuples(st.sampled_from(VALUES))),
    st.builds(Op, st.just("many"), st.sampled_from(["set_var", "match", "contact"]),
              st.lists(st.sampled_from(["A=1", "B=2", "sip:a@127.0.0.1"]), max_size=3).map(tuple)),
    st.builds(Op, st.just("codecs"), st.just("allow"),
              st.lists(st.sampled_from(CODECS), unique=True, max_size=3).map(tuple)),
    st.builds(Op, st.just("remove"), st.sampled_from(["context", "language", "set_var", "allow"])),
    st.builds(Op, st.just("add"), st.sampled_from(["endpoint", "auth", "aor"]),
              st.lists(st.sampled_from(TEMPLATES), unique=True, max_size=2).map(tuple)),
    st.builds(Op, st.just("delete")),
)  # fmt: skip


def inherited_only(files: Files, target: tuple[str, str], key: str) -> str | None:
    """The effective value of `key` once the object's own lines of it are gone."""
    document = files.load()
    document.remove_option(*target, key)
    return effective(files.with_changes(document).parse())[target].get(key)


def apply(document: ConfigDocument, op: Op, target: tuple[str, str], name: str, file: str) -> None:
    if op.kind == "set":
        document.set_option(*target, op.key, op.values[0])
    elif op.kind == "many":
        document.set_option(*target, op.key, list(op.values))
    elif op.kind == "codecs":
        document.set_codecs(*target, list(op.values))
    elif op.kind == "remove":
        document.remove_option(*target, op.key)
    elif op.kind == "add":
        options = [("type", op.key), ("context", "added")]
        document.add_section(MAIN.parent / file, name, templates=op.values, options=options)
    else:
        document.delete_section(*target)


def expected(
    files: Files, op: Op, target: tuple[str, str], old: dict[str, str]
) -> dict[str, str] | None:
    """What the reader must read for the target after `op` (None: the object is gone)."""
    new = dict(old)
    key = op.key.lower()
    if op.kind == "set":
        new[key] = op.values[0]
    elif op.kind == "many":
        inherited = inherited_only(files, target, key)
        lines = [v for v in [inherited, *op.values] if v]
        # set_var: a later NAME replaces an earlier one in place, as in Asterisk
        joined = shown_set_var(",".join(lines).split(",")) if key == "set_var" else ",".join(lines)
        if joined or op.values or inherited is not None:  # an inherited empty line still counts
            new[key] = joined
        else:
            new.pop(key, None)
    elif op.kind == "codecs":
        new["allow"] = ",".join(op.values)
        new.pop("disallow", None)  # the reader joins every disallow line, inherited ones too
    elif op.kind == "delete":
        return None
    return new


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_sets(), st.lists(ops, min_size=1, max_size=5), st.data())
def test_random_edits_do_what_they_mean_and_nothing_else(
    sets: dict[str, bytes], sequence: list[Op], data: st.DataObject
) -> None:
    original = Files(sets)
    try:
        before = effective(original.parse())
    except PjsipConfigError:
        assume(False)
    document = original.load()
    current = original
    for op in sequence:
        objects = sorted(before)
        if not objects:
            break
        target = data.draw(st.sampled_from(objects))
        name = data.draw(st.sampled_from(OBJECT_NAMES))
        file = data.draw(
            st.sampled_from([str(p.relative_to(MAIN.parent)) for p in current.parse().files])
        )
        snapshot = {path: document.render(path) for path in document.files}
        try:
            apply(document, op, target, name, file)
        except REFUSALS:
            assert {path: document.render(path) for path in document.files} == snapshot
            assert document.sections() == current.parse().sections
            continue
        candidate = original.with_changes(document)
        config = candidate.parse()
        assert document.sections() == config.sections
        after = effective(config)
        if op.kind == "add":  # its type comes from its templates first, as in Asterisk
            (added,) = set(after) - set(before)
            assert added[1] == name and after[added]["context"] == "added"
            assert {k: v for k, v in after.items() if k != added} == before
        elif op.kind == "remove":
            section = config.objects(target[0])[target[1]].section
            gone = {"allow", "disallow"} if op.key == "allow" else {op.key}
            assert not gone & {key for key, _ in section.options}
            assert {k: v for k, v in after.items() if k != target} == {
                k: v for k, v in before.items() if k != target
            }
        else:
            want = expected(current, op, target, before[target])
            got = after.get(target)
            if op.kind == "codecs" and got is not None:
                got = {k: v for k, v in got.items() if k != "disallow"}
            assert got == want
            assert {k: v for k, v in after.items() if k != target} == {
                k: v for k, v in before.items() if k != target
            }
        current, before = candidate, after
