"""A pure pjsip.conf parser that reads text the way Asterisk 22's config loader does.

The rules follow main/config.c (config_text_file_load, process_text_line) and were checked
against /work/shared/reference/pjsip-conf-format.md. Points where Asterisk surprises:

* An error in the main file (unknown template, unclosed `[`, option before any section,
  missing `#include`) rejects the whole file: PjsipConfigError. The same error inside an
  *included* file only ends that included file (and the rest of its glob): Asterisk's
  includer checks for a missing file, not for an invalid one. We record a warning.
* `;--` block comments nest. A stray `--;` outside a block comment drives Asterisk's nesting
  counter negative, so the following lines are ignored until a `;--`; we do the same and warn.
* After an `#include` returns, the includer keeps adding options to the section that was
  open *before* the `#include`; the included text itself continues the last section opened.
* `#include` with a glob that matches nothing is a missing file (error); `#tryinclude` is not.
* Include cycles: Asterisk recurses until its include depth limit (10) and loads the file
  several times; we reject the file instead (PjsipConfigError).
* Two objects of the same type with the same name make Asterisk load no object of that
  type at all ("configuration contains a duplicate object"), while the other types load; on a
  reload that type keeps its previous objects. That is not a whole-file rejection: the parse
  succeeds and :mod:`ispbx.pjsip.checks` marks every object of the type as not loadable.

Nothing here runs programs: `#exec` is skipped with a warning.
"""

from __future__ import annotations

import glob as globlib
import itertools
import os.path
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ispbx.pjsip.model import (
    PjsipConfig,
    PjsipConfigError,
    ResolvedObject,
    Section,
    fold,
    format_location,
)

__all__ = [
    "PjsipConfig",
    "PjsipConfigError",
    "ResolvedObject",
    "Section",
    "decode_config",
    "default_glob",
    "default_read_text",
    "dequote",
    "expand_braces",
    "expand_include",
    "matches_filter",
    "parse_file",
    "parse_text",
    "strip_comments",
]

ReadText = Callable[[Path], str]
Glob = Callable[[str], list[Path]]

WHITESPACE = " \t\n\v\f\r"  # C isspace() in the "C" locale
MAX_INCLUDE_LEVEL = 10
INTERN_MAX = 32  # option values up to this length are interned
MAX_NESTED_COMMENTS = 128
MAX_LINE_BYTES = 8190  # fgets() into an 8192-byte buffer: longer lines are skipped
MAX_NAME_BYTES = 79  # category names live in char[80]
GLOB_MAGIC = frozenset("*?[")
UTF8_BOM = "\ufeff"


def decode_config(data: bytes) -> str:
    """A file's bytes as Asterisk reads them: newlines untouched, bad UTF-8 replaced."""
    return data.decode("utf-8", errors="replace")


def default_read_text(path: Path) -> str:
    """Read a file as Asterisk does."""
    return decode_config(path.read_bytes())


def default_glob(pattern: str) -> list[Path]:
    return sorted(Path(match) for match in globlib.glob(pattern))


def parse_file(
    path: Path, *, read_text: ReadText | None = None, glob: Glob | None = None
) -> PjsipConfig:
    reader = read_text or default_read_text
    try:
        text = reader(path)
    except (OSError, UnicodeError) as err:
        raise PjsipConfigError(path, None, f"cannot read file: {err}") from err
    return parse_text(text, path=path, read_text=reader, glob=glob)


def parse_text(
    text: str,
    *,
    path: Path = Path("pjsip.conf"),
    read_text: ReadText | None = None,
    glob: Glob | None = None,
) -> PjsipConfig:
    """Parse `text` as the main file `path`; includes resolve against path's directory."""
    loader = _Loader(path.parent, read_text or default_read_text, glob or default_glob)
    loader.load_main(path, text)
    return loader.build()


class _ParseError(Exception):
    """An error that makes Asterisk stop reading the current file."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(format_location(path, line, reason))
        self.path = path
        self.line = line
        self.reason = reason


class _Var:
    __slots__ = ("inherited", "key", "name", "value")

    def __init__(self, name: str, value: str, *, inherited: bool, key: str = "") -> None:
        self.name = name
        # Option names and short values repeat across thousands of sections: share them.
        self.key = key or sys.intern(fold(name))
        self.value = sys.intern(value) if len(value) <= INTERN_MAX else value
        self.inherited = inherited


@dataclass
class _Category:
    name: str
    file: Path
    line: int
    is_template: bool = False
    parents: list[str] = field(default_factory=list)
    vars: list[_Var] = field(default_factory=list)
    # (the vars as they were, their inherited copies): a template is inherited by thousands
    _copies: tuple[list[_Var], list[_Var]] | None = field(default=None, repr=False)

    def inherit(self, base: _Category, base_name: str) -> None:
        self.parents.append(base_name)
        self.vars.extend(base.inherited_copies())

    def inherited_copies(self) -> list[_Var]:
        """This section's vars as a child copies them. A _Var is never changed once made (a
        ``+=`` puts a new one in its place), so children may share the copies; they are made
        again when the vars changed since."""
        cached = self._copies
        if cached is None or cached[0] != self.vars:  # element identity: no __eq__ on _Var
            copies = [_Var(v.name, v.value, inherited=True, key=v.key) for v in self.vars]
            cached = self._copies = (list(self.vars), copies)
        return cached[1]

    def to_section(self) -> Section:
        every = tuple((v.key, v.value) for v in self.vars)
        own = every if not self.parents else _own_options(self.vars, every)
        return Section(
            name=self.name,
            file=self.file,
            line=self.line,
            is_template=self.is_template,
            parents=tuple(self.parents),
            options=own,
            all_options=every,
        )


def _own_options(
    variables: list[_Var], every: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    return tuple(pair for var, pair in zip(variables, every, strict=True) if not var.inherited)


@dataclass
class _LoadState:
    """What Asterisk keeps per load call; the files of one glob share it."""

    category: _Category | None
    comment_depth: int = 0
    comment_opened: list[tuple[Path, int]] = field(default_factory=list)
    lines_read: int = 0


class _Loader:
    def __init__(self, config_dir: Path, read_text: ReadText, glob: Glob) -> None:
        self.config_dir = config_dir
        self.read_text = read_text
        self.glob = glob
        self.categories: list[_Category] = []
        self.by_name: dict[str, list[_Category]] = {}
        self.current: _Category | None = None
        self.warnings: list[str] = []
        self.files: list[Path] = []
        self.stack: list[str] = []

    # -- files -------------------------------------------------------------------------

    def load_main(self, path: Path, text: str) -> None:
        self._note_file(path)
        self.stack.append(_normal(path))
        try:
            self._parse_file(path, text, _LoadState(category=None))
        except _ParseError as err:
            raise PjsipConfigError(err.path, err.line, err.reason) from None

    def build(self) -> PjsipConfig:
        sections = tuple(category.to_section() for category in self.categories)
        return PjsipConfig(sections, tuple(self.warnings), tuple(self.files))

    def warn(self, path: Path, line: int | None, reason: str) -> None:
        self.warnings.append(format_location(path, line, reason))

    def _note_file(self, path: Path) -> None:
        if path not in self.files:
            self.files.append(path)

    def _parse_file(self, path: Path, text: str, state: _LoadState) -> None:
        for lineno, raw in enumerate(text.split("\n"), start=1):
            state.lines_read += 1
            line = self._prepare(path, lineno, raw, state)
            if line is None:
                continue
            line = self._strip_comments(path, lineno, line, state)
            if line is not None:
                line = line.strip(WHITESPACE)
                if line:
                    self._process_line(path, lineno, line, state)
        if state.comment_depth > 0:
            opened_path, opened_line = state.comment_opened[-1]
            self.warn(opened_path, opened_line, "unterminated ';--' block comment")

    def _prepare(self, path: Path, lineno: int, raw: str, state: _LoadState) -> str | None:
        if state.lines_read == 1 and raw.startswith(UTF8_BOM):
            raw = raw[1:]
        if "\0" in raw:
            raw = raw[: raw.index("\0")]
        if len(raw) > MAX_LINE_BYTES // 4 and len(_utf8(raw)) > MAX_LINE_BYTES:
            self.warn(path, lineno, f"line longer than {MAX_LINE_BYTES} bytes, skipped")
            return None
        return raw

    # -- comments ----------------------------------------------------------------------

    def _strip_comments(self, path: Path, lineno: int, raw: str, state: _LoadState) -> str | None:
        """The part of the line outside comments, or None when all of it is commented."""
        kept, marks = strip_comments(raw, state.comment_depth)
        for mark in marks:
            if mark > 0:
                self._open_comment(path, lineno, state)
            else:
                self._close_comment(path, lineno, state)
        return kept

    def _open_comment(self, path: Path, lineno: int, state: _LoadState) -> None:
        if state.comment_depth >= MAX_NESTED_COMMENTS:
            reason = f"more than {MAX_NESTED_COMMENTS} nested ';--' comments (Asterisk hangs)"
            raise PjsipConfigError(path, lineno, reason)
        state.comment_depth += 1
        state.comment_opened.append((path, lineno))

    def _close_comment(self, path: Path, lineno: int, state: _LoadState) -> None:
        state.comment_depth -= 1
        if state.comment_opened:
            state.comment_opened.pop()
        if state.comment_depth == -1:
            self.warn(
                path,
                lineno,
                "'--;' without an open ';--' comment: Asterisk ignores the lines after "
                "this one until a ';--'",
            )

    # -- lines -------------------------------------------------------------------------

    def _process_line(self, path: Path, lineno: int, line: str, state: _LoadState) -> None:
        if line[0] == "[":
            state.category = self._section(path, lineno, line)
        elif line[0] == "#":
            self._directive(path, lineno, line)
        else:
            self._option(path, lineno, line, state.category)

    def _section(self, path: Path, lineno: int, line: str) -> _Category:
        close = line.find("]")
        if close < 0:
            raise _ParseError(path, lineno, "parse error: no closing ']'")
        name = line[1:close]
        rest = line[close + 1 :]
        target = _Category(self._truncated(path, lineno, name), path, lineno)
        new: _Category | None = target
        if rest.startswith("("):
            end = rest.find(")")
            if end < 0:
                raise _ParseError(path, lineno, "parse error: no closing ')'")
            for token in rest[1:end].split(","):
                target, new = self._section_token((path, lineno), name, token, target, new)
        if new is not None:
            self._add_category(new)
        return target

    def _section_token(
        self,
        where: tuple[Path, int],
        name: str,
        token: str,
        target: _Category,
        new: _Category | None,
    ) -> tuple[_Category, _Category | None]:
        """Apply one item of `[name](...)`; returns the section now written to, and
        the new section still to be added (None once `+` merged it)."""
        path, lineno = where
        if token == "!":
            target.is_template = True
        elif token.startswith("+"):
            found = self._find_for_append(name, token[1:])
            if found is None:
                reason = f"Category addition requested, but category '{name}' does not exist"
                raise _ParseError(path, lineno, reason)
            if new is not None:
                found.is_template |= new.is_template
                found.vars.extend(new.vars)
                found.parents.extend(new.parents)
                self.current = found
            return found, None
        else:
            base = self._find_base(token)
            if base is None:
                reason = f"Inheritance requested, but category '{token}' does not exist"
                raise _ParseError(path, lineno, reason)
            target.inherit(base, token)
        return target, new

    def _truncated(self, path: Path, lineno: int, name: str) -> str:
        if len(name) <= MAX_NAME_BYTES // 4 or len(_utf8(name)) <= MAX_NAME_BYTES:
            return name
        self.warn(path, lineno, f"section name longer than {MAX_NAME_BYTES} bytes is cut")
        return _utf8(name)[:MAX_NAME_BYTES].decode("utf-8", errors="ignore")

    def _add_category(self, category: _Category) -> None:
        self.categories.append(category)
        self.by_name.setdefault(fold(category.name), []).append(category)
        self.current = category

    def _named(self, name: str) -> list[_Category]:
        # An empty name matches every category, as in Asterisk.
        return self.categories if not name else self.by_name.get(fold(name), [])

    def _find_base(self, name: str) -> _Category | None:
        found = self._named(name)
        return found[0] if found else None

    def _find_for_append(self, name: str, filter_: str) -> _Category | None:
        return next((c for c in self._named(name) if _category_matches(c, filter_)), None)

    def _directive(self, path: Path, lineno: int, line: str) -> None:
        end = 1
        while end < len(line) and " " < line[end] <= "\x7f":
            end += 1
        word = line[1:end]
        argument = line[end + 1 :].strip(WHITESPACE)
        kind = fold(word)
        if kind == "exec":
            self.warn(path, lineno, "#exec is never run by this reader; line skipped")
        elif kind not in ("include", "tryinclude"):
            self.warn(path, lineno, f"Unknown directive '#{word}', line skipped")
        elif not argument:
            self.warn(path, lineno, f"Directive '#{word}' needs an argument (filename)")
        else:
            self._include(path, lineno, dequote(argument), required=kind == "include")

    def _option(self, path: Path, lineno: int, line: str, category: _Category | None) -> None:
        if category is None:
            raise _ParseError(path, lineno, "parse error: no section for this line")
        escaped = line[0] == "\\"
        if escaped:
            line = line[1:]
            if not line or not " " < line[0] <= "\x7f":
                raise _ParseError(path, lineno, "Invalid escape")
        equals = line.find("=", int(escaped))
        if equals < 0:
            self.warn(path, lineno, "No '=' (equal sign) in line, skipped")
            return
        if equals > int(escaped) and line[equals - 1] == "+":
            name = line[: equals - 1].strip(WHITESPACE)
            if _append_to_value(category, name, line[equals + 1 :]):
                return
            value = line[equals + 1 :].strip(WHITESPACE)
        else:
            name = line[:equals].strip(WHITESPACE)
            rest = line[equals + 1 :]
            value = (rest[1:] if rest.startswith(">") else rest).strip(WHITESPACE)
        if not name:
            self.warn(path, lineno, "No variable name in line, skipped")
            return
        category.vars.append(_Var(name, value, inherited=False))

    # -- includes ----------------------------------------------------------------------

    def _include(self, path: Path, lineno: int, argument: str, *, required: bool) -> None:
        pattern = str(self.config_dir / argument)
        if len(self.stack) > MAX_INCLUDE_LEVEL:
            self.warn(path, lineno, f"Maximum include level ({MAX_INCLUDE_LEVEL}) exceeded")
            found = False
        else:
            found = self._load_pattern(path, lineno, pattern)
        if required and not found:
            reason = f"The file '{argument}' was listed as a #include but it does not exist"
            raise _ParseError(path, lineno, reason)

    def _load_pattern(self, from_path: Path, lineno: int, pattern: str) -> bool:
        state = _LoadState(category=self.current)
        count = 0
        for file in self._expand(pattern):
            if _normal(file) in self.stack:
                reason = f"include recursion: '{file}' is already being read"
                raise PjsipConfigError(from_path, lineno, reason)
            text = self._read(file, from_path, lineno)
            if text is None:
                continue
            count += 1
            self._note_file(file)
            self.stack.append(_normal(file))
            try:
                self._parse_file(file, text, state)
            except _ParseError as err:
                self.warn(err.path, err.line, f"{err.reason}; Asterisk skips the rest of it")
                break
            finally:
                self.stack.pop()
        return count > 0

    def _expand(self, pattern: str) -> Iterator[Path]:
        return expand_include(pattern, self.glob)

    def _read(self, file: Path, from_path: Path, lineno: int) -> str | None:
        try:
            return self.read_text(file)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except IsADirectoryError:
            self.warn(from_path, lineno, f"'{file}' is not a regular file, ignoring")
        except (OSError, UnicodeError) as err:
            self.warn(from_path, lineno, f"cannot read '{file}': {err}")
        return None


def _append_to_value(category: _Category, name: str, addition: str) -> bool:
    """`name += addition`: extend the last `name` value; False when there is none."""
    replace = next((v for v in reversed(category.vars) if v.name == name), None)
    if replace is None:
        return False
    value = (replace.value + addition).strip(WHITESPACE)
    # Asterisk then rewrites the last variable matching name and old value, ignoring case.
    key, old = fold(replace.name), fold(replace.value)
    for index in range(len(category.vars) - 1, -1, -1):
        var = category.vars[index]
        if var.key == key and (not old or fold(var.value) == old):
            category.vars[index] = _Var(replace.name, value, inherited=False)
            break
    return True


def _category_matches(category: _Category, filter_: str) -> bool:
    if not filter_:
        return not category.is_template
    variables = [(v.name, v.value) for v in category.vars]
    return matches_filter(variables, filter_, is_template=category.is_template)


def matches_filter(
    variables: Sequence[tuple[str, str]], filter_: str, *, is_template: bool
) -> bool:
    """Asterisk's category filter for `(+filter)`: `name=regex&...` plus TEMPLATES=...

    `variables` are the section's (name, value) pairs as read so far, inherited ones included,
    names in their written case."""
    if not filter_:
        return not is_template
    found = expressions = 0
    template_ok = False
    for part in filter_.split("&"):
        expressions += 1
        name, equals, value = part.strip(WHITESPACE).partition("=")
        if not equals:
            break
        name, value = name.strip(WHITESPACE), value.split("=")[0].strip(WHITESPACE)
        if name == "TEMPLATES":
            if fold(value) == "include" or (fold(value) == "restrict" and is_template):
                found += 1
                template_ok = is_template
            elif fold(value) == "restrict":
                break
            continue
        try:
            name_re, value_re = re.compile(name), re.compile(value)
        except re.error:
            return False
        if any(name_re.search(n) and value_re.search(v) for n, v in variables):
            found += 1
    return found == expressions and (not is_template or template_ok)


def expand_include(pattern: str, glob: Glob) -> Iterator[Path]:
    """The files an ``#include`` pattern names: ``{a,b}`` alternatives, then globs."""
    for alternative in expand_braces(pattern):
        if GLOB_MAGIC.isdisjoint(alternative):
            yield Path(alternative)
        else:
            yield from glob(alternative)


def expand_braces(pattern: str) -> list[str]:
    """Expand `{a,b}` the way glob(GLOB_BRACE) does, leftmost group first."""
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth, end = 0, -1
    commas: list[int] = []
    for index in range(start, len(pattern)):
        char = pattern[index]
        depth += (char == "{") - (char == "}")
        if char == "," and depth == 1:
            commas.append(index)
        if depth == 0:
            end = index
            break
    if end < 0:
        return [pattern]
    bounds = [start, *commas, end]
    head, tail = pattern[:start], pattern[end + 1 :]
    result: list[str] = []
    for left, right in itertools.pairwise(bounds):
        result.extend(expand_braces(head + pattern[left + 1 : right] + tail))
    return result


def dequote(argument: str) -> str:
    closing = {'"': '"', "<": ">"}.get(argument[0])
    if closing is not None and argument[-1] == closing:
        return argument[1:-1]
    return argument


def strip_comments(raw: str, depth: int) -> tuple[str | None, tuple[int, ...]]:
    """Cut `;` and `;-- --;` comments out of one line, as Asterisk does.

    `depth` is the block-comment nesting depth before the line. Returns the text outside
    comments (None when the whole line is commented; `\\;` escapes already resolved) and the
    depth changes met in order: +1 for each `;--` opened, -1 for each `--;` closed."""
    if ";" not in raw:
        return (raw if depth == 0 else None), ()
    if depth == 0 and "\\" not in raw and "-" not in raw:
        return raw[: raw.index(";")], ()
    if depth > 0 and ";--" not in raw and "--;" not in raw:
        return None, ()
    return _scan_comments(raw, depth)


def _scan_comments(buf: str, depth: int) -> tuple[str | None, tuple[int, ...]]:
    # "\0" marks where Asterisk cuts its line buffer; `start` is its process_buf.
    marks: list[int] = []
    start: int | None = 0 if depth == 0 else None
    pos = 0
    while (i := buf.find(";", pos)) >= 0:
        if i > pos and buf[i - 1] == "\\":
            buf = buf[: i - 1] + buf[i:]
            pos = i
        elif buf[i + 1 : i + 3] == "--" and buf[i + 3 : i + 4] != "-":
            depth += 1
            marks.append(1)
            buf = buf[:i] + "\0" + buf[i + 1 :]
            pos = i + 3
        elif i >= pos + 2 and buf[i - 2 : i] == "--":
            pos = i + 1
            depth -= 1
            marks.append(-1)
            if depth == 0 and start is None:
                start = pos
            elif depth == 0 and start is not None:
                kept = _cut(buf, start)
                buf = buf[:kept] + buf[pos:]
                pos = kept
        elif depth == 0:
            buf = buf[:i]
            break
        else:
            pos = i + 1
    if start is None:
        return None, tuple(marks)
    return buf[start : _cut(buf, start)], tuple(marks)


def _cut(buf: str, start: int) -> int:
    end = buf.find("\0", start)
    return len(buf) if end < 0 else end


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogatepass")


def _normal(path: Path) -> str:
    return os.path.normpath(str(path))
