"""Which lines of which files make which section, read the way ispbx.pjsip.parser reads them.

The scan follows the reader's control flow step by step (load states shared by the files of one
glob, the section an included file continues, errors that end only an included file, BOM, NUL,
over-long lines, block comments through the reader's own `strip_comments`), but it does not build
option values: a section records *which lines* it owns (a `range` of line ids for a stretch of
plain lines, single ids otherwise) and which templates it copied at which point. Values are read
from those lines on demand (`expand`), replaying the reader's rules, so loading 10,000 endpoints
stays cheap. tests/unit/manage compares `sections()` with the reader's sections on generated files.
"""

from __future__ import annotations

import bisect
import gc
import os.path
import re
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

from ispbx.manage._lines import BOM, MAX_LINE_BYTES, WHITESPACE, plain_content, reader_text
from ispbx.pjsip.model import Section, fold
from ispbx.pjsip.parser import (
    dequote,
    expand_braces,
    expand_include,
    matches_filter,
    strip_comments,
)

Glob = Callable[[str], list[Path]]
MAX_INCLUDE_LEVEL = 10
MAX_NESTED_COMMENTS = 128
MAX_NAME_BYTES = 79
_HEAD = re.compile(r"\n[ \t\v\f\r]*[\[#]")  # a header or directive after line 0
_ESCAPE = re.compile(r"^[ \t\v\f\r]*\\", re.M)
_BLOCK_OPENER = re.compile(r";--(?!-)")


class RejectedError(Exception):
    """The reader rejects the whole file set (it would raise PjsipConfigError)."""

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.line = line
        self.reason = reason


class _StopFile(Exception):
    """An error that ends the current file (in the main file: rejects everything)."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.line = line
        self.reason = reason


class TextFile:
    """One file of the document: its current lines (ids into LineStore) and what the last scan
    learned about its place in the reading order."""

    __slots__ = (
        "appended",
        "created",
        "depth",
        "end_depth",
        "end_seq",
        "eol",
        "ids",
        "lead",
        "loads",
        "original",
        "path",
        "stopped",
    )

    def __init__(self, path: Path, original: bytes | None) -> None:
        self.path = path
        self.original = original  # None: created by an edit
        self.created = original is None
        self.ids: list[int] = []
        self.eol: str | None = None  # its line ending style, once an edit needed it
        self.reset()

    def reset(self) -> None:
        self.loads = 0  # how many times the reader reads it (a file may be included twice)
        self.end_seq = 0.0  # reading position just after its last line
        self.end_depth = 0  # block-comment depth after its last line
        self.stopped = False  # an error ended it early: the reader ignores the rest
        self.lead: tuple[float, float] | None = None  # (owner seq, start seq) of leading options
        self.appended = 0  # sections added at its end since the scan
        self.depth = 0  # include depth (the main file: 1)


class LineStore:
    """Every line of every file, by id. Ids never change until the next full scan; a removed
    line's text becomes "" so that a stale reference reads as a blank line."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.file: list[TextFile] = []

    def add_file(self, file: TextFile, lines: list[str]) -> None:
        base = len(self.text)
        self.text.extend(lines)
        self.file.extend([file] * len(lines))
        file.ids = list(range(base, base + len(lines)))

    def new_line(self, file: TextFile, text: str) -> int:
        self.text.append(text)
        self.file.append(file)
        return len(self.text) - 1

    def lines(self, file: TextFile) -> list[str]:
        return [self.text[i] for i in file.ids]

    def fresh_lines(self, file: TextFile) -> list[str]:
        """lines() of a file added since the last edit (its ids are consecutive)."""
        ids = file.ids
        return self.text[ids[0] : ids[0] + len(ids)] if ids else []


class Inherit:
    """A template copied into a section: its first `count` entries, at that point of reading."""

    __slots__ = ("base", "count", "header", "token")

    def __init__(self, base: Cat, count: int, header: int, token: str) -> None:
        self.base = base
        self.count = count
        self.header = header  # the header line that asked for it
        self.token = token  # the name as written there


Entry = int | range | Inherit


class Piece:
    """A header of a section: its first `[name]` or a `[name](+)` continuation. The lines read
    after it belong to entries[start:] (up to the next piece)."""

    __slots__ = ("file", "header", "start")

    def __init__(self, header: int, file: TextFile, start: int) -> None:
        self.header = header
        self.file = file
        self.start = start


class Cat:
    """One section after `(+)` merging, as the reader's _Category, but lazy about values.

    A section opened by a plain `[name]` or `[name](tpl,...)` header is *lazy*: the scan keeps
    only its template names and where the lines right after its header end; `Structure.resolve`
    builds its entries (template copies with their counts, line ranges), which the scan does
    at once for sections it must look into. Until then `entries`, `seqs`, `pieces` are unset.
    """

    __slots__ = (
        "entries",
        "file",
        "header",
        "is_template",
        "key",
        "lazy",
        "line",
        "name",
        "pieces",
        "run_end",
        "seq",
        "seqs",
        "tokens",
        "type_cache",
    )
    entries: list[Entry]
    seqs: array[float]  # reading position of each entry (of its last line)
    pieces: list[Piece]

    def __init__(
        self, name: str, file: TextFile, where: tuple[int, int, float], tokens: str | None
    ) -> None:
        self.name = name
        self.key = name.lower() if name.isascii() else fold(name)
        self.file = file
        self.header, self.line, self.seq = where  # header line id and number, reading position
        self.is_template = False
        self.type_cache: str | bool | None = False  # False: not computed yet
        self.tokens = tokens  # template names still to copy (lazy sections)
        self.run_end = -1  # end of the lines right after the header (lazy sections)
        self.lazy = tokens is not None
        if not self.lazy:
            self.entries = []
            self.seqs = array("d")
            self.pieces = []

    @property
    def parents(self) -> tuple[str, ...]:
        """The template names copied, in order, as written (the reader's Section.parents)."""
        return tuple(e.token for e in self.entries if isinstance(e, Inherit))


class Var:
    """One option as the reader holds it, with where it came from."""

    __slots__ = ("inherited", "key", "line", "name", "value", "via")

    def __init__(
        self, name: str, key: str, value: str, *, inherited: bool, line: int, via: int
    ) -> None:
        self.name = name
        self.key = key
        self.value = value
        self.inherited = inherited
        self.line = line  # own line that set it (or last changed it with +=); -1 if inherited
        self.via = via  # index of the Inherit entry it was copied by; -1 if own


Memo = dict[tuple[int, int], list[Var]]


class _State:
    __slots__ = ("category", "depth", "lines_read")

    def __init__(self, category: Cat | None) -> None:
        self.category = category
        self.depth = 0
        self.lines_read = 0


class _Pass:
    """One reading of one file."""

    __slots__ = ("base", "file", "lines", "seen_header", "start_seq", "state")

    def __init__(self, file: TextFile, lines: list[str], state: _State, start_seq: float) -> None:
        self.file = file
        self.lines = lines  # as the reader decodes them
        self.base = file.ids[0] if file.ids else 0
        self.state = state
        self.seen_header = False
        self.start_seq = start_seq


OpenFile = Callable[[Path], TextFile]


class Structure:
    """The result of one scan; edits keep it up to date (see document.py)."""

    def __init__(self, main: Path, store: LineStore, open_file: OpenFile, glob: Glob) -> None:
        self.main = main
        self.config_dir = main.parent
        self.store = store
        self.open_file = open_file
        self.glob = glob
        self.categories: list[Cat] = []
        self.by_name: dict[str, list[Cat]] = {}
        self.refs: dict[str, int] = {}  # how many headers copy the first section of a name
        self.any_refs = 0  # how many headers copy "" (the first section of all)
        self.current: Cat | None = None
        self.stack: list[str] = []
        self.seq = 0.0
        self.files: list[TextFile] = []
        self.overrides: dict[int, str] = {}  # content of lines that plain_content cannot tell
        self.bom_lines: set[int] = set()  # lines whose leading BOM the reader drops
        self.last_header_seq: dict[str, float] = {}
        self.any_name_seq = -1.0  # last header naming "" (which means: any section)
        self.includes: list[str] = []  # every include pattern read, braces expanded
        self.filters: dict[str, list[tuple[str, float]]] = {}  # (+filter) headers by name
        self._decoded: dict[int, tuple[str, list[str]]] = {}

    # -- scanning ----------------------------------------------------------------------

    def scan(self) -> None:
        """Read the main file and its includes. The cyclic garbage collector is paused while
        tens of thousands of small objects are built (it would walk them again and again)."""
        try:
            main = self.open_file(self.main)
        except OSError as err:
            raise RejectedError(self.main, None, f"cannot read file: {err}") from err
        self._note(main)
        self.stack.append(_normal(self.main))
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._read(main, _State(None))
        except _StopFile as err:
            raise RejectedError(err.path, err.line, err.reason) from None
        finally:
            if collecting:
                gc.enable()
            self._decoded.clear()

    def _note(self, file: TextFile) -> None:
        if file not in self.files:
            self.files.append(file)

    def _read(self, file: TextFile, state: _State) -> None:
        file.loads += 1
        file.depth = len(self.stack)
        text, lines = self._reader_lines(file)
        work = _Pass(file, lines, state, self.seq)
        try:
            if state.depth == 0 and _fast(text, lines):
                self._read_fast(work, text)
            else:
                self._read_slow(work)
        finally:
            file.end_seq = self.seq
            file.end_depth = state.depth

    def _reader_lines(self, file: TextFile) -> tuple[str, list[str]]:
        """The file's text and lines as the reader decodes them."""
        cached = self._decoded.get(id(file))
        if cached is None:
            lines = self.store.fresh_lines(file)
            text = "\n".join(lines)
            if not text.isascii():
                text = reader_text(text)
                lines = text.split("\n")
            cached = self._decoded[id(file)] = (text, lines)
        return cached

    def _read_fast(self, work: _Pass, text: str) -> None:
        """A file without block comments, NULs or long lines: only `[` and `#` lines matter
        one by one; the stretches between them are handed to the open section as ranges."""
        lines, state = work.lines, work.state
        offset = self.seq  # the reading position of line index i is offset + i + 1
        escapes = _escape_lines(text)
        previous = -1
        if state.lines_read == 0 and lines[0].startswith(BOM):
            previous = self._bom_line(work)
            if previous < 0 and self.overrides[work.base].startswith("\\"):
                escapes.insert(0, 0)
        elif lines[0].lstrip(" \t\v\f\r")[:1] in ("[", "#"):
            self.seq += 1
            self._line(work, 0, _content(lines[0]))
            previous = 0
        offset = self.seq - 1 if previous == 0 else offset
        state.lines_read += len(lines)
        index, position, base = 0, 0, work.base
        for match in _HEAD.finditer(text, len(lines[0])):
            index += text.count("\n", position, match.start() + 1)
            position = match.start() + 1
            category = state.category
            if previous + 1 == index:
                pass
            elif category is not None and category.lazy and category.header == base + previous:
                if escapes:
                    self._flush(work, (previous + 1, index), escapes, offset)
                else:
                    category.run_end = base + index  # the usual case: lines after a header
            elif category is not None and work.seen_header and not escapes:
                self.give(category, range(base + previous + 1, base + index), offset + index)
            else:
                self._flush(work, (previous + 1, index), escapes, offset)
            self.seq = offset + index + 1
            if not self._plain_header(work, index, lines[index]):
                self._line(work, index, _content(lines[index]))
            offset = self.seq - index - 1  # an #include moved the reading position on
            previous = index
        category = state.category
        end = len(lines)
        lazy = category is not None and category.lazy and category.header == base + previous
        if lazy and previous + 1 < end and not escapes:
            assert category is not None
            category.run_end = base + end
            previous = end
        self._flush(work, (previous + 1, end), escapes, offset)
        self.seq = offset + end

    def _plain_header(self, work: _Pass, index: int, line: str) -> bool:
        """The usual `[name]` or `[name](tpl,...)` line in one step (the hot path of loading
        big files); False leaves any other line, or an error, to _line."""
        if ";" in line:
            return False
        content = line.strip(WHITESPACE)
        close = content.find("]")
        if close <= 1 or close > MAX_NAME_BYTES // 4 + 1 or content[0] != "[":
            return False
        tokens = ""
        if content[close + 1 : close + 2] == "(":
            end = content.find(")", close)
            tokens = content[close + 2 : end]
            if end < 0 or not self._count_templates(tokens):
                return False
        where = (work.base + index, index + 1, self.seq)
        category = Cat(content[1:close], work.file, where, tokens)
        self._add(category)
        work.state.category = category
        work.seen_header = True
        return True

    def _count_templates(self, tokens: str) -> bool:
        """Count the template names of a plain header; False if one is unusual or missing."""
        if "," not in tokens:
            key = tokens.lower() if tokens.isascii() else fold(tokens)
            if not key or key not in self.by_name or "!" in key or "+" in key:
                return False
            self.refs[key] = self.refs.get(key, 0) + 1
            return True
        if not _plain_tokens(tokens):
            return False
        keys = [_fold(token) for token in tokens.split(",")]
        if not all(key in self.by_name for key in keys):
            return False
        for key in keys:
            self.refs[key] = self.refs.get(key, 0) + 1
        return True

    def _bom_line(self, work: _Pass) -> int:
        """The first line read with a BOM: the reader drops the BOM. Returns 0 if the line
        was a header or directive (handled), -1 if it is left to the first range."""
        content = _content(work.lines[0][1:])
        self.bom_lines.add(work.base)
        self.overrides[work.base] = content
        if content[:1] in ("[", "#"):
            self.seq += 1
            self._line(work, 0, content)
            return 0
        return -1

    def _flush(self, work: _Pass, span: tuple[int, int], escapes: list[int], offset: float) -> None:
        """Lines first..end-1 hold no header or directive: they go to the open section."""
        first, end = span
        if first >= end:
            return
        base, category = work.base, work.state.category
        if category is None:
            for index in range(first, end):
                if self.content(base + index):
                    raise _StopFile(work.file.path, index + 1, "no section for this line")
            return
        leading = not work.seen_header and work.file.lead is None
        if leading and any(self.content(base + index) for index in range(first, end)):
            work.file.lead = (category.seq, work.start_seq)
        low, high = bisect.bisect_left(escapes, first), bisect.bisect_left(escapes, end)
        for index in escapes[low:high]:
            if _bad_escape(self.content(base + index)):
                if index > first:
                    self.give(category, range(base + first, base + index), offset + index)
                raise _StopFile(work.file.path, index + 1, "Invalid escape")
        self.give(category, range(base + first, base + end), offset + end)

    def _read_slow(self, work: _Pass) -> None:
        """Line by line, exactly as the reader's _parse_file."""
        state = work.state
        for index, line in enumerate(work.lines):
            state.lines_read += 1
            self.seq += 1
            raw = line
            if state.lines_read == 1 and raw.startswith(BOM):
                raw = raw[1:]
                self.bom_lines.add(work.base + index)
            if "\0" in raw:
                raw = raw[: raw.index("\0")]
            if len(raw) > MAX_LINE_BYTES // 4 and len(_utf8(raw)) > MAX_LINE_BYTES:
                continue
            kept = self._strip(work, index, raw)
            content = kept.strip(WHITESPACE) if kept is not None else ""
            if not content:
                continue
            if content[0] in ("[", "#"):
                self._line(work, index, content)
                continue
            lid = work.base + index
            self.overrides[lid] = content
            self._option(work, index, content)

    def _strip(self, work: _Pass, index: int, raw: str) -> str | None:
        state = work.state
        kept, marks = strip_comments(raw, state.depth)
        for mark in marks:
            if mark > 0 and state.depth >= MAX_NESTED_COMMENTS:
                reason = f"more than {MAX_NESTED_COMMENTS} nested ';--' comments"
                raise RejectedError(work.file.path, index + 1, reason)
            state.depth += mark
        return kept

    def _option(self, work: _Pass, index: int, content: str) -> None:
        category = work.state.category
        if category is None:
            raise _StopFile(work.file.path, index + 1, "no section for this line")
        if _bad_escape(content):
            raise _StopFile(work.file.path, index + 1, "Invalid escape")
        if not work.seen_header and work.file.lead is None:
            work.file.lead = (category.seq, work.start_seq)
        self.give(category, work.base + index, self.seq)

    def _line(self, work: _Pass, index: int, content: str) -> None:
        if content[0] == "[":
            work.state.category = self._section(work, index, content)
            work.seen_header = True
        else:
            self._directive(work, index, content)

    # -- sections ----------------------------------------------------------------------

    def _section(self, work: _Pass, index: int, line: str) -> Cat:
        path = work.file.path
        close = line.find("]")
        if close < 0:
            raise _StopFile(path, index + 1, "parse error: no closing ']'")
        name = line[1:close]
        rest = line[close + 1 :]
        where = (work.base + index, index + 1, self.seq)
        tokens: str | None = None
        if rest.startswith("("):
            end = rest.find(")")
            if end < 0:
                raise _StopFile(path, index + 1, "parse error: no closing ')'")
            tokens = rest[1:end]
        plain = tokens is None or _plain_tokens(tokens)
        if name and len(name) <= MAX_NAME_BYTES // 4 and plain:
            return self._lazy_section(work, where, name, tokens or "")
        return self._full_section(work, where, name, tokens)

    def _lazy_section(
        self, work: _Pass, where: tuple[int, int, float], name: str, tokens: str
    ) -> Cat:
        """`[name]` or `[name](tpl,...)`: only check the templates exist and count them."""
        for token in tokens.split(",") if tokens else ():
            key = _fold(token)
            if key not in self.by_name:
                reason = f"Inheritance requested, but category '{token}' does not exist"
                raise _StopFile(work.file.path, where[1], reason)
            self.refs[key] = self.refs.get(key, 0) + 1
        target = Cat(name, work.file, where, tokens)
        self._add(target)
        return target

    def _full_section(
        self, work: _Pass, where: tuple[int, int, float], name: str, tokens: str | None
    ) -> Cat:
        """Any other header, step by step as the reader's _section."""
        target = Cat(_truncated(name), work.file, where, None)
        new: Cat | None = target
        self._note_name(name)
        for token in tokens.split(",") if tokens is not None else ():
            target, new = self._token(
                (work.file.path, where[1], where[0]), name, token, target, new
            )
        if new is not None:
            self._add(new)
        self.resolve(target)
        target.pieces.append(Piece(where[0], work.file, len(target.entries)))
        return target

    def _add(self, category: Cat) -> None:
        self.categories.append(category)
        found = self.by_name.get(category.key)
        if found is None:
            self.by_name[category.key] = [category]
        else:
            found.append(category)
        self.current = category
        self.last_header_seq[category.key] = category.seq

    def _note_name(self, name: str) -> None:
        self.last_header_seq[_fold(name)] = self.seq
        if not name:
            self.any_name_seq = self.seq

    def _token(
        self,
        where: tuple[Path, int, int],
        name: str,
        token: str,
        target: Cat,
        new: Cat | None,
    ) -> tuple[Cat, Cat | None]:
        path, lineno, _ = where
        if token == "!":
            target.is_template = True
        elif token.startswith("+"):
            if token[1:]:
                self.filters.setdefault(_fold(name), []).append((token[1:], self.seq))
            found = self._find_for_append(name, token[1:])
            if found is None:
                reason = f"Category addition requested, but category '{name}' does not exist"
                raise _StopFile(path, lineno, reason)
            self.resolve(found)
            if new is not None:
                found.is_template |= new.is_template
                found.entries.extend(new.entries)
                found.seqs.extend(new.seqs)
                self.current = found
            return found, None
        else:
            self._inherit(target, token, where)
        return target, new

    def _inherit(self, target: Cat, token: str, where: tuple[Path, int, int]) -> None:
        found = self.by_name.get(_fold(token)) if token else self.categories
        if not found:
            reason = f"Inheritance requested, but category '{token}' does not exist"
            raise _StopFile(where[0], where[1], reason)
        if token:
            self.refs[_fold(token)] = self.refs.get(_fold(token), 0) + 1
        else:
            self.any_refs += 1
            self.any_name_seq = self.seq
        base = found[0]
        self.resolve(base)
        target.entries.append(Inherit(base, len(base.entries), where[2], token))
        target.seqs.append(self.seq)

    def resolve(self, category: Cat) -> None:
        """Build a lazy section's entries: the templates as they were when its header was
        read, then the lines right after the header."""
        if not category.lazy:
            return
        entries: list[Entry] = []
        seqs = array("d")
        for token in category.tokens.split(",") if category.tokens else ():
            base = self.by_name[_fold(token)][0]
            self.resolve(base)
            count = bisect.bisect_left(base.seqs, category.seq)
            entries.append(Inherit(base, count, category.header, token))
            seqs.append(category.seq)
        pieces = [Piece(category.header, category.file, len(entries))]
        if category.run_end > category.header + 1:
            entries.append(range(category.header + 1, category.run_end))
            seqs.append(category.seq + category.run_end - category.header - 1)
        category.entries, category.seqs, category.pieces = entries, seqs, pieces
        category.lazy = False
        category.tokens = None

    def give(self, category: Cat, entry: Entry, seq: float) -> None:
        """Lines read for `category` (after the first run, or from another file)."""
        self.resolve(category)
        category.entries.append(entry)
        category.seqs.append(seq)

    def heirs(self, category: Cat) -> int:
        """How many headers copy this section as a template."""
        count = 0
        if self.by_name.get(category.key, [None])[0] is category:
            count += self.refs.get(category.key, 0)
        if self.categories and self.categories[0] is category:
            count += self.any_refs
        return count

    def named(self, name: str) -> list[Cat]:
        return self.categories if not name else self.by_name.get(fold(name), [])

    def _find_for_append(self, name: str, filter_: str) -> Cat | None:
        for category in self.named(name):
            self.resolve(category)
            if not filter_:
                if not category.is_template:
                    return category
                continue
            pairs = [(v.name, v.value) for v in self.expand(category)]
            if matches_filter(pairs, filter_, is_template=category.is_template):
                return category
        return None

    # -- includes ----------------------------------------------------------------------

    def _directive(self, work: _Pass, index: int, line: str) -> None:
        end = 1
        while end < len(line) and " " < line[end] <= "\x7f":
            end += 1
        kind = fold(line[1:end])
        argument = line[end + 1 :].strip(WHITESPACE)
        if kind in ("include", "tryinclude") and argument:
            self._include(work, index, dequote(argument), required=kind == "include")

    def _include(self, work: _Pass, index: int, argument: str, *, required: bool) -> None:
        pattern = str(self.config_dir / argument)
        self.includes.extend(os.path.normpath(a) for a in expand_braces(pattern))
        found = len(self.stack) <= MAX_INCLUDE_LEVEL and self._load_pattern(work, index, pattern)
        if required and not found:
            reason = f"The file '{argument}' was listed as a #include but it does not exist"
            raise _StopFile(work.file.path, index + 1, reason)

    def _load_pattern(self, work: _Pass, index: int, pattern: str) -> bool:
        state = _State(self.current)
        count = 0
        for path in self._expand(pattern):
            if _normal(path) in self.stack:
                reason = f"include recursion: '{path}' is already being read"
                raise RejectedError(work.file.path, index + 1, reason)
            file = self._open(path)
            if file is None:
                continue
            count += 1
            self._note(file)
            self.stack.append(_normal(path))
            try:
                self._read(file, state)
            except _StopFile:
                file.stopped = True
                break
            finally:
                self.stack.pop()
        return count > 0

    def _expand(self, pattern: str) -> Iterator[Path]:
        return expand_include(pattern, self.glob)

    def _open(self, path: Path) -> TextFile | None:
        try:
            return self.open_file(path)
        except OSError:
            return None

    # -- reading values ----------------------------------------------------------------

    def content(self, lid: int) -> str:
        """What the reader keeps of line `lid` (trimmed, comments cut), "" for nothing."""
        found = self.overrides.get(lid)
        return found if found is not None else plain_content(self.store.text[lid])

    def expand(self, category: Cat, upto: int | None = None, memo: Memo | None = None) -> list[Var]:
        """The section's variables as the reader holds them after its first `upto` entries."""
        out: list[Var] = []
        self.resolve(category)
        entries = category.entries if upto is None else category.entries[:upto]
        for index, entry in enumerate(entries):
            if isinstance(entry, Inherit):
                copied = self._expand_cached(entry.base, entry.count, memo)
                out.extend(_copy(var, index) for var in copied)
            elif isinstance(entry, range):
                for lid in entry:
                    self._apply(out, lid)
            else:
                self._apply(out, entry)
        return out

    def _expand_cached(self, category: Cat, upto: int, memo: Memo | None) -> list[Var]:
        if memo is None:
            return self.expand(category, upto)
        key = (id(category), upto)
        found = memo.get(key)
        if found is None:
            found = memo[key] = self.expand(category, upto, memo)
        return found

    def _apply(self, out: list[Var], lid: int) -> None:
        content = self.content(lid)
        parsed = parse_option(content) if content else None
        if parsed is None:
            return
        name, value, append = parsed
        if append:
            if _append_to_value(out, name, value, lid):
                return
            value = value.strip(WHITESPACE)
        if name:
            out.append(Var(name, fold(name), value, inherited=False, line=lid, via=-1))

    def type_of(self, category: Cat) -> str | None:
        """The first `type` value, inherited ones first (what sorcery matches)."""
        if category.type_cache is False:
            found = next((v.value for v in self.expand(category) if v.key == "type"), None)
            category.type_cache = found
        cached = category.type_cache
        return cached if isinstance(cached, str) else None

    def materialize(self, category: Cat) -> None:
        """Replace the section's ranges by the ids of the lines in them the reader reads."""
        self.resolve(category)
        if not any(isinstance(entry, range) for entry in category.entries):
            return
        entries: list[Entry] = []
        seqs = array("d")
        moved: dict[int, int] = {}
        for index, (entry, seq) in enumerate(zip(category.entries, category.seqs, strict=True)):
            moved.setdefault(index, len(entries))
            if isinstance(entry, range):
                read = [lid for lid in entry if self.content(lid)]
                entries.extend(read)
                seqs.extend([seq] * len(read))
            else:
                entries.append(entry)
                seqs.append(seq)
        for piece in category.pieces:
            piece.start = moved.get(piece.start, len(entries))
        category.entries = entries
        category.seqs = seqs

    def sections(self) -> tuple[Section, ...]:
        """The sections as the reader's Section values (current line numbers)."""
        positions: dict[int, dict[int, int]] = {}
        memo: Memo = {}
        result = []
        for category in self.categories:
            self.resolve(category)
            header = category.pieces[0].header if category.pieces else -1
            where = positions.setdefault(
                id(category.file), {lid: n for n, lid in enumerate(category.file.ids, 1)}
            )
            found = self.expand(category, None, memo)
            result.append(
                Section(
                    name=category.name,
                    file=category.file.path,
                    line=where.get(header, category.line),
                    is_template=category.is_template,
                    parents=category.parents,
                    options=tuple((v.key, v.value) for v in found if not v.inherited),
                    all_options=tuple((v.key, v.value) for v in found),
                )
            )
        return tuple(result)


def _copy(var: Var, via: int) -> Var:
    return Var(var.name, var.key, var.value, inherited=True, line=-1, via=via)


def add_entry(category: Cat, entry: Entry, seq: float) -> None:
    category.entries.append(entry)
    category.seqs.append(seq)


def parse_option(line: str) -> tuple[str, str, bool] | None:
    """(name, value, is_append) of an option line as the reader's _option reads it; for
    `+=` the value is the raw addition. None when the reader skips the line."""
    escaped = line[0] == "\\"
    if escaped:
        line = line[1:]
    equals = line.find("=", int(escaped))
    if equals < 0:
        return None
    if equals > int(escaped) and line[equals - 1] == "+":
        return line[: equals - 1].strip(WHITESPACE), line[equals + 1 :], True
    name = line[:equals].strip(WHITESPACE)
    rest = line[equals + 1 :]
    value = (rest[1:] if rest.startswith(">") else rest).strip(WHITESPACE)
    return (name, value, False) if name else None


def _append_to_value(out: list[Var], name: str, addition: str, lid: int) -> bool:
    """`name += addition`, as the reader's _append_to_value."""
    replace = next((v for v in reversed(out) if v.name == name), None)
    if replace is None:
        return False
    value = (replace.value + addition).strip(WHITESPACE)
    key, old = fold(replace.name), fold(replace.value)
    for index in range(len(out) - 1, -1, -1):
        var = out[index]
        if var.key == key and (not old or fold(var.value) == old):
            out[index] = Var(replace.name, key, value, inherited=False, line=lid, via=-1)
            break
    return True


def _content(line: str) -> str:
    """What the reader keeps of a line of a fast-path file (no block comments)."""
    if ";" in line:
        line = strip_comments(line, 0)[0] or ""
    return line.strip(WHITESPACE)


def _escape_lines(text: str) -> list[int]:
    """Indexes of the lines that start with a backslash (an escaped first character)."""
    if "\\" not in text:
        return []
    return [text.count("\n", 0, m.start()) for m in _ESCAPE.finditer(text)]


def _plain_tokens(tokens: str) -> bool:
    """Template names only: no `!`, no `+`, none empty (`()` is one empty name)."""
    if "!" not in tokens and "+" not in tokens:
        return "" not in tokens.split(",")
    return False


def _fold(text: str) -> str:
    return text.lower() if text.isascii() else fold(text)


def _fast(text: str, lines: list[str]) -> bool:
    if "\0" in text or "--;" in text or _BLOCK_OPENER.search(text):
        return False
    return max(map(len, lines), default=0) <= MAX_LINE_BYTES // 4


def _bad_escape(content: str) -> bool:
    if not content or content[0] != "\\":
        return False
    rest = content[1:]
    return not rest or not " " < rest[0] <= "\x7f"


def _truncated(name: str) -> str:
    if len(name) <= MAX_NAME_BYTES // 4 or len(_utf8(name)) <= MAX_NAME_BYTES:
        return name
    return _utf8(name)[:MAX_NAME_BYTES].decode("utf-8", errors="ignore")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogatepass")


def _normal(path: Path) -> str:
    return os.path.normpath(str(path))
