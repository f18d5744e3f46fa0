"""What a parsed pjsip.conf holds, and how options become an object's effective values.

Behaviour follows Asterisk 22 (main/config.c, res/res_sorcery_config.c, main/format_cap.c).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

# Options whose repeated lines add up instead of replacing each other.
ACCUMULATING_OPTIONS = frozenset({"set_var", "match", "contact"})
ALL_CODECS = "all"

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_CODEC_SEPARATORS = str.maketrans({"|": ","})


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

    @property
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

    def objects(self, type_: str) -> dict[str, ResolvedObject]:
        """Non-template sections of effective type `type_`, by name (first one wins)."""
        cached = self._cache.get(type_)
        if cached is None:
            cached = {}
            for section in self.sections:
                if section.is_template or section.type != type_ or section.name in cached:
                    continue
                options = MappingProxyType(resolve_options(section.all_options))
                cached[section.name] = ResolvedObject(section.name, type_, section, options)
            self._cache[type_] = cached
        return dict(cached)

    def endpoint_names(self) -> list[str]:
        return list(self._objects("endpoint"))

    def has_endpoint(self, name: str) -> bool:
        return name in self._objects("endpoint")

    def endpoint_config(self, name: str) -> dict[str, str] | None:
        return self._options_of("endpoint", name)

    def auth(self, name: str) -> dict[str, str] | None:
        return self._options_of("auth", name)

    def aor(self, name: str) -> dict[str, str] | None:
        return self._options_of("aor", name)

    def _objects(self, type_: str) -> dict[str, ResolvedObject]:
        if type_ not in self._cache:
            self.objects(type_)
        return self._cache[type_]

    def _options_of(self, type_: str, name: str) -> dict[str, str] | None:
        found = self._objects(type_).get(name)
        return None if found is None else dict(found.options)


def resolve_options(options: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Effective values: last line wins, except accumulating options and codecs."""
    values: dict[str, str] = {}
    codecs: list[str] = []
    object_type: str | None = None
    for key, value in options:
        if key == "type":
            object_type = value if object_type is None else object_type
            values["type"] = object_type
        elif key in ("allow", "disallow"):
            apply_codec_line(codecs, allowing=key == "allow", value=value)
            values["allow"] = ",".join(codecs)
            if key == "disallow":
                values["disallow"] = _joined(values.get("disallow"), value)
        elif key in ACCUMULATING_OPTIONS:
            if value:
                values[key] = _joined(values.get(key), value)
            else:
                values.setdefault(key, "")
        else:
            values[key] = value
    return values


def _joined(previous: str | None, value: str) -> str:
    return value if not previous else f"{previous},{value}"


def apply_codec_line(codecs: list[str], *, allowing: bool, value: str) -> None:
    """Apply one `allow=`/`disallow=` line to an ordered codec list, in place.

    Mirrors ast_format_cap_update_by_allow_disallow: items split on ',' or '|', a leading
    '!' inverts, a ':<ms>' packetization suffix is ignored, `all` is kept as the token
    "all" (this model does not know Asterisk's codec table, so `allow=all` followed by
    `disallow=ulaw` still reads "all"). A `(a|b)` value replaces the list (allow) or adds
    "all" (disallow), as Asterisk does for its own printed form.
    """
    text = value
    if len(text) >= 2 and text[0] == "(" and text[-1] == ")":
        text = text[1:-1]
        _apply_codec(codecs, allowing=not allowing, name=ALL_CODECS)
    for item in text.translate(_CODEC_SEPARATORS).split(","):
        name = item.strip(" \t\n\v\f\r")
        item_allowing = allowing
        if name.startswith("!"):
            name = name[1:]
            item_allowing = not allowing
        name = fold(name.rpartition(":")[0] if ":" in name else name)
        if name:
            _apply_codec(codecs, allowing=item_allowing, name=name)


def _apply_codec(codecs: list[str], *, allowing: bool, name: str) -> None:
    if allowing:
        if name not in codecs:
            codecs.append(name)
    elif name == ALL_CODECS:
        codecs.clear()
    elif name in codecs:
        codecs.remove(name)


def duplicate_object(sections: Iterable[Section]) -> tuple[Section, str] | None:
    """The first non-template section whose (type, name) repeats an earlier one."""
    seen: set[tuple[str, str]] = set()
    for section in sections:
        object_type = section.type
        if section.is_template or object_type is None:
            continue
        key = (object_type, section.name)
        if key in seen:
            return section, object_type
        seen.add(key)
    return None
