"""What a parsed pjsip.conf holds, and how options become an object's effective values.

Behaviour follows Asterisk 22 (main/config.c, res/res_sorcery_config.c, main/format_cap.c).
"""

from __future__ import annotations

import functools
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ispbx.pjsip.options import OptionTable
from ispbx.pjsip.shown import resolve_codecs, shown_set_var

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(text: str) -> str:
    """Lower-case ASCII letters only, as strcasecmp compares."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def format_location(path: Path | None, line: int | None, reason: str) -> str:
    if path is None:
        return reason
    if line is None:
        return f"{path}: {reason}"
    return f"{path}:{line}: {reason}"


class PjsipConfigError(Exception):
    """Whole-file rejection (what Asterisk rejects as a whole). str(e) is 'path:line: reason'."""

    def __init__(self, path: Path | None, line: int | None, reason: str) -> None:
        super().__init__(format_location(path, line, reason))
        self.path = path
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Section:
    """One `[name]` section after `(+)` merging.

    `options` are the section's own lines; `all_options` is the full list Asterisk holds for
    the section: copies of the inherited options followed by (or, after `(+)`, interleaved
    with) the own ones. Both have lower-cased keys.
    """

    name: str
    file: Path
    line: int
    is_template: bool
    parents: tuple[str, ...]
    options: tuple[tuple[str, str], ...]
    all_options: tuple[tuple[str, str], ...] = ()

    @functools.cached_property
    def type(self) -> str | None:
        """The first `type` value, inherited ones first: what sorcery matches against."""
        return next((value for key, value in self.all_options if key == "type"), None)


@dataclass(frozen=True)
class ResolvedObject:
    """A non-template section seen as a sorcery object, with its effective option values."""

    name: str
    type: str
    section: Section
    options: Mapping[str, str]


@dataclass(frozen=True)
class PjsipConfig:
    sections: tuple[Section, ...]
    warnings: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    _cache: dict[str, dict[str, ResolvedObject]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # type -> name -> the first section of that name (what sorcery keeps), options unresolved
    _firsts: dict[str, dict[str, Section]] = field(default_factory=dict, compare=False, repr=False)
    _resolved: dict[tuple[str, str], ResolvedObject] = field(
        default_factory=dict, compare=False, repr=False
    )

    def objects(self, type_: str) -> dict[str, ResolvedObject]:
        """Non-template sections of effective type `type_`, by name (first one wins)."""
        cached = self._cache.get(type_)
        if cached is None:
            cached = {name: self._resolve(type_, name) for name in self._first(type_)}
            self._cache[type_] = cached
        return dict(cached)

    def _first(self, type_: str) -> dict[str, Section]:
        """The first non-template section of each name with effective type ``type_``."""
        if not self._firsts:
            firsts = self._firsts
            for section in self.sections:
                if not section.is_template and section.type is not None:
                    firsts.setdefault(section.type, {}).setdefault(section.name, section)
        return self._firsts.get(type_, {})

    def _resolve(self, type_: str, name: str) -> ResolvedObject:
        """One object's effective options, resolved on first use (a writer asks for a few of
        thousands)."""
        key = (type_, name)
        found = self._resolved.get(key)
        if found is None:
            section = self._first(type_)[name]
            options = MappingProxyType(resolve_options(section.all_options))
            found = self._resolved[key] = ResolvedObject(name, type_, section, options)
        return found

    def endpoint_names(self) -> list[str]:
        return list(self._first("endpoint"))

    def has_object(self, type_: str, name: str) -> bool:
        return name in self._first(type_)

    def names(self, type_: str) -> frozenset[str]:
        """The ids of non-template sections of effective type ``type_`` (no options resolved)."""
        return frozenset(s.name for s in self.sections if not s.is_template and s.type == type_)

    def template_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.sections if s.is_template)

    def has_endpoint(self, name: str) -> bool:
        return name in self._first("endpoint")

    def endpoint_config(self, name: str) -> dict[str, str] | None:
        return self._options_of("endpoint", name)

    def auth(self, name: str) -> dict[str, str] | None:
        return self._options_of("auth", name)

    def aor(self, name: str) -> dict[str, str] | None:
        return self._options_of("aor", name)

    def _options_of(self, type_: str, name: str) -> dict[str, str] | None:
        if name not in self._first(type_):
            return None
        return dict(self._resolve(type_, name).options)


def resolve_options(
    options: Iterable[tuple[str, str]], table: OptionTable | None = None
) -> dict[str, str]:
    """Effective values: the last line wins, except options Asterisk's table marks as
    accumulating (``permit``, ``match``, ``contact`` …, joined in order), ``set_var`` (a later
    NAME replaces an earlier one in place) and the codec list, which is every ``allow``/
    ``disallow`` line applied in order, with ``all`` meaning every codec Asterisk knows."""
    table = table or OptionTable.load()
    lines = list(options)
    object_type = next((value for key, value in lines if key == "type"), None)
    values: dict[str, str] = {}
    set_vars: list[str] = []
    for key, value in lines:
        if key == "type":
            values["type"] = object_type or value
        elif key in ("allow", "disallow"):
            if key == "disallow":
                values["disallow"] = _joined(values.get("disallow"), value)
        elif key == "set_var":
            set_vars.append(value)
        elif _accumulates(table, object_type, key):
            values[key] = _joined(values.get(key), value) if value else values.get(key, "")
        else:
            values[key] = value
    codec_lines = tuple(line for line in lines if line[0] in ("allow", "disallow"))
    if codec_lines:
        values["allow"] = _codecs(codec_lines, table)
    if set_vars:
        values["set_var"] = shown_set_var(set_vars)
    return values


def takes_many_lines(object_type: str, key: str) -> bool:
    """Whether repeated lines of ``key`` add up (``set_var``, ``match``, ``permit`` …) rather
    than the last one winning."""
    return key == "set_var" or _accumulates(OptionTable.load(), object_type, key)


def _accumulates(table: OptionTable, object_type: str | None, key: str) -> bool:
    if object_type is None:
        return key in ("match", "contact")
    return key in _accumulating(table, object_type)


@functools.lru_cache(maxsize=64)
def _accumulating(table: OptionTable, object_type: str) -> frozenset[str]:
    return frozenset(
        name.lower() for name, spec in table.options(object_type).items() if spec.accumulates
    )


@functools.lru_cache(maxsize=4096)
def _codecs(lines: tuple[tuple[str, str], ...], table: OptionTable) -> str:
    """The codec list of these allow/disallow lines (templates repeat the same lines)."""
    return ",".join(resolve_codecs(lines, table))


def _joined(previous: str | None, value: str) -> str:
    return value if not previous else f"{previous},{value}"
