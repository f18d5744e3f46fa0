"""What Asterisk will make of each object of a parsed pjsip.conf: loaded, or refused and why.

Asterisk parses the whole file set and then creates each object on its own. An object with an
unknown option or a value its option refuses is not created ("Could not create an object of type
…"; on a reload the old version is kept); a repeated id makes Asterisk load no object of that type
at all (on a reload that type keeps its previous objects), while the other types load; a section
whose ``type`` Asterisk does not know is ignored without a word. The rules come from Asterisk's own
option table (:mod:`ispbx.pjsip.options`) and were checked in the lab
(docs/asterisk-load-rules.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ispbx.pjsip.model import PjsipConfig, Section, format_location
from ispbx.pjsip.options import OptionTable, Problem


@dataclass(frozen=True)
class ObjectCheck:
    """One object section: whether Asterisk creates the object, and what it would complain of."""

    type: str
    name: str
    file: Path
    line: int
    loadable: bool
    problems: tuple[Problem, ...]

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def refusals(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.refused)


class ConfigCheck:
    """The checks of every object section of one parse, and the warnings they give."""

    def __init__(self, objects: Iterable[ObjectCheck], warnings: Iterable[str]) -> None:
        self._by_key: dict[tuple[str, str], ObjectCheck] = {}
        for check in objects:
            self._by_key.setdefault((check.type, check.name), check)
        self.warnings = tuple(warnings)

    def of(self, object_type: str, name: str) -> ObjectCheck | None:
        """The check of the first section of that type and id (the one a reader shows)."""
        return self._by_key.get((object_type, name))

    def not_loadable(self) -> list[ObjectCheck]:
        return [check for check in self._by_key.values() if not check.loadable]


SET_WIDE = frozenset({"duplicate_object", "more_than_one"})  # problems of a type, not an object


def check_config(
    config: PjsipConfig,
    table: OptionTable | None = None,
    *,
    known: ConfigCheck | None = None,
    changed: frozenset[str] = frozenset(),
) -> ConfigCheck:
    """Check every object section. With ``known`` (the check of the same files before an edit)
    only sections named in ``changed``, or not known before, are checked again; the others keep
    their problems (an edit never touches another section's lines, nor a template)."""
    table = table or OptionTable.load()
    checks: list[ObjectCheck] = []
    warnings: list[str] = []
    for section in config.sections:
        if section.is_template or section.type is None:
            continue
        ignored = table.check_type(section.type)
        if ignored:
            warnings += [_warning(section, p) for p in ignored]
            continue
        before = (
            known.of(section.type, section.name) if known and section.name not in changed else None
        )
        if before is not None:
            problems = tuple(p for p in before.problems if p.code not in SET_WIDE)
        else:
            problems = tuple(table.check_object(section.type, section.all_options))
        loadable = not any(p.refused for p in problems)
        checks.append(_object(section, loadable, problems))
        warnings += [_warning(section, p) for p in problems]
    skipped = table.duplicate_objects((c.type, c.name, c.loadable) for c in checks)
    checks = [_skip(c, skipped[c.type]) if c.type in skipped else c for c in checks]
    for object_type, problem in skipped.items():
        culprit = _repeat(checks, object_type, problem.value or "")
        warnings.append(format_location(culprit.file, culprit.line, problem.message))
    return ConfigCheck(checks, warnings)


def _repeat(checks: list[ObjectCheck], object_type: str, name: str) -> ObjectCheck:
    """The section that repeats an id (the second of that name; for single-object types such as
    ``global``, the last section of the type)."""
    of_type = [c for c in checks if c.type == object_type]
    same = [c for c in of_type if c.name == name]
    return same[1] if len(same) > 1 else of_type[-1]


def _object(section: Section, loadable: bool, problems: tuple[Problem, ...]) -> ObjectCheck:
    assert section.type is not None
    return ObjectCheck(section.type, section.name, section.file, section.line, loadable, problems)


def _skip(check: ObjectCheck, why: Problem) -> ObjectCheck:
    return ObjectCheck(
        check.type, check.name, check.file, check.line, False, (*check.problems, why)
    )


def _warning(section: Section, problem: Problem) -> str:
    return format_location(section.file, section.line, f"[{section.name}] {problem.message}")
