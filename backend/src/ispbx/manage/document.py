"""A lossless, editable model of a set of Asterisk config files (pjsip.conf and its includes).

`ConfigDocument.load(main)` keeps every byte of every file read (invalid UTF-8, CRLF, BOM, NULs,
comments, layout) and knows which lines make which object, the way ispbx.pjsip.parser (the
validator) reads them. Edits change only the lines they must; `render()` of an unedited file
gives back its bytes. No I/O happens here except through the injected `read` and `glob`: the
apply pipeline renders candidates in memory, validates them with the reader, and only then
writes (`changed_files()`).

Objects are addressed as Asterisk addresses them: (type after templates, id). Rules the edits
follow (each checked against the reader in tests/unit/manage):

* set_option, single-valued option: the line that gives the effective value is rewritten in
  place (the LAST own line, also in a `(+)` continuation or an included file), keeping its
  indentation, spacing, `=`/`=>` and inline comment (a `+=` line becomes `=`). Earlier own lines
  of the same option stay: they are dead in Asterisk (last one wins) and removing them would
  touch more lines than needed. When the value comes only from a template, an override line is
  added to the object's own section after its last option line (before trailing blank and
  comment lines); if a `(+)` continuation copies templates, after the last one that sets it.
  Templates are never changed.
* Accumulating options (`set_var`, `match`, `contact`) take a list: the object's own lines are
  replaced (the first one is rewritten, the new values follow it, the others are removed);
  inherited values still come first, as in Asterisk.
* Codecs (`set_codecs`, or set_option("allow", [...])): the object's own allow/disallow lines
  are replaced by `disallow = all` + `allow = a,b` at the first of them (or added as an
  override), so the effective list is exactly the given order whatever the templates say.
* remove_option removes the object's own lines of the option (allow and disallow together),
  so the template or Asterisk's default applies again.
* add_section appends at the end of a file, one blank line before, in the file's line endings.
* delete_section removes the section and its `(+)` continuations, each with the comment block
  directly above its header (comment lines with no blank line between) and everything up to the
  next header, except the comment block directly above that next header.
* ensure_include appends `; comment` and `#include target` to the end of a file once.

Refusals raise a DocumentError subclass (see each class) and change nothing: every edit checks
and renders all it will write before it changes a line. An edit that could change how any other
line or object reads raises UnsafeEditError instead of guessing: a line in or next to a `;--`
block comment, a file included twice, a section other sections copy as a template, a later
`[name](+filter)` whose filter looks at the edited option, a file whose next glob sibling starts
with lines that continue its last section, lines an include adds to a section being deleted.
Such layouts are rare; the admin edits them by hand.

Also: names and values are compared and reported as the reader decodes them (undecodable bytes
as U+FFFD); a file that nothing includes can be written (add_section) but its sections are not
objects until it is included; load() does not look for duplicate objects (the reader, which
validates every candidate, does). A document is not thread-safe.
"""

from __future__ import annotations

import bisect
import dataclasses
import fnmatch
import os.path
import re
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ispbx.manage._lines import (
    BOM,
    DEFAULT_STYLE,
    MAX_LINE_BYTES,
    WHITESPACE,
    OptionParts,
    eol_of,
    is_blank,
    is_comment_line,
    is_plain,
    line_bytes,
    plain_content,
    reader_text,
    split_option,
)
from ispbx.manage._structure import (
    Cat,
    Inherit,
    LineStore,
    Piece,
    RejectedError,
    Structure,
    TextFile,
    add_entry,
    parse_option,
)
from ispbx.pjsip.model import Section, fold, resolve_options, takes_many_lines
from ispbx.pjsip.parser import default_glob, strip_comments

__all__ = [
    "ConfigDocument",
    "ConfigObject",
    "ConfigRejectedError",
    "DocumentError",
    "DuplicateObjectError",
    "InvalidNameError",
    "InvalidValueError",
    "OptionLine",
    "TemplateOnlyError",
    "UnknownFileError",
    "UnknownObjectError",
    "UnknownTemplateError",
    "UnsafeEditError",
]

ReadBytes = Callable[[Path], bytes]
Glob = Callable[[str], list[Path]]
CODEC_OPTIONS = frozenset({"allow", "disallow"})
_OPTION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
_SECTION_NAME = re.compile(r"[^\s\x00-\x1f\x7f\[\]();,\\=\"'#]+")
_CODEC = re.compile(r"[A-Za-z0-9_]+")
_INCLUDE_TARGET = re.compile(r"[A-Za-z0-9_.@+-]+(?:/[A-Za-z0-9_.@+-]+)*")


# -- errors ------------------------------------------------------------------------------


class DocumentError(Exception):
    """Base of every refusal of this module; str(e) says what and where."""


class ConfigRejectedError(DocumentError):
    """load(): the reader rejects the file set as a whole (unknown template, unclosed `[`,
    missing `#include`, include recursion, …), so no structure can be trusted."""

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class UnknownObjectError(DocumentError, LookupError):
    """No object of that type and id (templates are not objects)."""


class TemplateOnlyError(DocumentError):
    """The id names only a template (`[name](!)`) of that type; templates are never edited."""


class DuplicateObjectError(DocumentError):
    """add_section would create a second object of the same type and id."""


class UnknownTemplateError(DocumentError, LookupError):
    """add_section names a template that is not defined before the place the section goes."""


class UnknownFileError(DocumentError, LookupError):
    """render() of a file the document does not hold."""


class InvalidNameError(DocumentError, ValueError):
    """An option, section, template or include name this module will not write, or an option
    it will not change that way (`type`; `disallow` outside set_codecs)."""


class InvalidValueError(DocumentError, ValueError):
    """A value the format cannot hold: CR, LF or NUL, white space at either end (the reader
    trims it), text that is not valid Unicode, a line longer than Asterisk reads, a list for a
    single-valued option, an invalid or repeated codec name, a section without a type."""


class UnsafeEditError(DocumentError):
    """The edit would change how other lines read, or the layout is one this module does not
    edit safely; nothing was changed."""


# -- value types -------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionLine:
    """One own option of an object, where it is written (current line numbers)."""

    option: str  # lower-cased, as the reader keys it
    value: str  # as the reader reads it
    file: Path
    line: int


@dataclass(frozen=True)
class ConfigObject:
    """An object as the document sees it."""

    type: str
    id: str
    file: Path
    line: int  # of its first header
    templates: tuple[str, ...]
    headers: tuple[tuple[Path, int], ...]  # the first header, then `(+)` continuations
    own: tuple[OptionLine, ...]  # in the order the reader reads them
    options: Mapping[str, str]  # effective values, as PjsipConfig.objects() gives them


# -- the document ------------------------------------------------------------------------


class ConfigDocument:
    """The files of one Asterisk config set, editable line by line."""

    def __init__(self, main: Path, *, read: ReadBytes | None = None, glob: Glob | None = None):
        self.main = main
        self._read_bytes = read or _read_file
        self._glob = glob or default_glob
        self._files: dict[str, TextFile] = {}
        self._store = LineStore()
        self._structure: Structure | None = None
        self._touched: set[str] = set()

    @classmethod
    def load(
        cls, main: Path, *, read: ReadBytes | None = None, glob: Glob | None = None
    ) -> ConfigDocument:
        """Read `main` and everything it includes (relative includes resolve against main's
        directory, also inside nested includes, as Asterisk does). `read(path)` returns a
        file's bytes and raises OSError (FileNotFoundError for a missing file) like
        Path.read_bytes; `glob(pattern)` returns the matching paths, sorted. Raises
        ConfigRejectedError when the reader rejects the main file as a whole."""
        document = cls(main, read=read, glob=glob)
        document._scan()
        return document

    # -- files -------------------------------------------------------------------------

    @property
    def files(self) -> tuple[Path, ...]:
        """The files read, in the reader's order, then files created by edits."""
        read = [f.path for f in self._struct().files]
        return (*read, *(f.path for f in self._files.values() if f.path not in read))

    def render(self, path: Path) -> bytes:
        file = self._files.get(self._key(path))
        if file is None:
            raise UnknownFileError(f"{path}: not a file of this document")
        return "\n".join(self._store.lines(file)).encode("utf-8", "surrogateescape")

    def changed_files(self) -> dict[Path, bytes]:
        """The files whose bytes differ from those loaded (or that edits created)."""
        changed: dict[Path, bytes] = {}
        for key in sorted(self._touched):
            file = self._files[key]
            data = self.render(file.path)
            if file.original is None or data != file.original:
                changed[file.path] = data
        return changed

    # -- objects -----------------------------------------------------------------------

    def find(self, obj_type: str, obj_id: str) -> ConfigObject | None:
        try:
            return self.get(obj_type, obj_id)
        except (UnknownObjectError, TemplateOnlyError):
            return None

    def get(self, obj_type: str, obj_id: str) -> ConfigObject:
        """The object; UnknownObjectError or TemplateOnlyError when there is none."""
        structure = self._struct()
        category = self._lookup(obj_type, obj_id)
        found = structure.expand(category)
        own = tuple(
            OptionLine(v.key, v.value, self._store.file[v.line].path, self._line_number(v.line))
            for v in found
            if not v.inherited and v.line >= 0
        )
        return ConfigObject(
            type=obj_type,
            id=obj_id,
            file=category.file.path,
            line=self._header_line(category),
            templates=tuple(category.parents),
            headers=tuple((p.file.path, self._line_number(p.header)) for p in category.pieces),
            own=own,
            options=MappingProxyType(resolve_options((v.key, v.value) for v in found)),
        )

    def object_ids(self, obj_type: str) -> list[str]:
        """Ids of the objects of a type, in reading order (reads every section: not cheap)."""
        structure = self._struct()
        seen: dict[str, None] = {}
        for category in structure.categories:
            fresh = not category.is_template and category.name not in seen
            if fresh and structure.type_of(category) == obj_type:
                seen[category.name] = None
        return list(seen)

    def sections(self) -> tuple[Section, ...]:
        """Every section as the reader's Section values would be after parsing the rendered
        files (names and values as the reader decodes them)."""
        return self._struct().sections()

    # -- edits -------------------------------------------------------------------------

    def set_option(
        self, obj_type: str, obj_id: str, option: str, value: str | Sequence[str]
    ) -> None:
        """Make `option` of the object read `value` (a list for accumulating options and
        for `allow`). See the module docstring for where the change lands."""
        key = _option_key(option)
        if key == "allow":
            self.set_codecs(obj_type, obj_id, _codec_list(value))
            return
        if key == "disallow":
            raise InvalidNameError("set the codecs with set_codecs() or the 'allow' option")
        if takes_many_lines(obj_type, key):
            values = [value] if isinstance(value, str) else list(value)
            self._set_many(obj_type, obj_id, key, [_checked_value(v) for v in values])
        elif isinstance(value, str):
            self._set_single(obj_type, obj_id, key, _checked_value(value))
        else:
            raise InvalidValueError(f"option '{key}' takes one value, not a list")

    def set_codecs(self, obj_type: str, obj_id: str, codecs: Sequence[str]) -> None:
        """Make the object's effective `allow` exactly `codecs`, in that order."""
        names = _checked_codecs(codecs)
        lines = [("disallow", "all")] + ([("allow", ",".join(names))] if names else [])
        category = self._editable(obj_type, obj_id, CODEC_OPTIONS)
        self._replace_own(category, CODEC_OPTIONS, lines)

    def remove_option(self, obj_type: str, obj_id: str, option: str) -> bool:
        """Remove the object's own lines of `option` (allow/disallow: both); False if none."""
        key = _option_key(option)
        keys = CODEC_OPTIONS if key in CODEC_OPTIONS else frozenset({key})
        category = self._editable(obj_type, obj_id, keys)
        own = self._own_lines(category, keys)
        for lid in own:
            self._touchable(lid)
        for lid in own:
            self._remove_line(category, lid)
        return bool(own)

    def add_section(
        self,
        file: Path,
        name: str,
        *,
        templates: Sequence[str] = (),
        options: Iterable[tuple[str, str]] = (),
        comment: str | None = None,
    ) -> None:
        """Append `[name](templates)` with `options` (and `; comment` lines above it) to the end
        of `file` (relative paths are relative to the main file's directory); the file is
        created in the document when it is new. A file that nothing includes is written but
        its sections are not objects until it is included (see ensure_include)."""
        _check_section_name(name)
        pairs = [(_option_name(k), k, _checked_value(v)) for k, v in options]
        comments = _comment_lines(comment)
        for template in templates:
            _check_template_name(template)
        structure = self._struct()
        full = file if file.is_absolute() else self.main.parent / file
        target = self._files.get(self._key(full))
        loaded = target is not None and target.loads > 0
        bases: list[Cat] = []
        if target is not None and loaded:
            self._check_append(structure, target, name)
            bases = [self._template(structure, target, t) for t in templates]
            self._check_new_object(structure, target, name, bases, pairs)
        header = f"[{name}]" + (f"({','.join(templates)})" if templates else "")
        texts = [f"; {c}" if c else ";" for c in comments] + [header]
        for key, written, value in pairs:
            line = DEFAULT_STYLE.new_line(written, value, "")
            texts.append(self._checked_text(line, key, value, bom=False))
        if target is None:
            target = self._create(full)
        lids = self._append_lines(target, texts)
        if loaded:
            self._register(structure, target, (name, templates, bases), lids[len(comments) :])

    def delete_section(self, obj_type: str, obj_id: str) -> None:
        """Remove the object's section and its `(+)` continuations (see the module docstring
        for which comment and blank lines go with them)."""
        structure = self._struct()
        category = self._editable(obj_type, obj_id)
        spans = [self._piece_span(structure, category, piece) for piece in category.pieces]
        inside = {lid for file, start, end in spans for lid in file.ids[start:end]}
        for entry in category.entries:
            if isinstance(entry, int) and entry not in inside:
                where = self._where(entry)
                raise UnsafeEditError(f"{where}: a line of '{obj_id}' outside its sections")
        for file, start, end in reversed(_merged(spans)):
            self._delete_span(file, start, end)
        self._unregister(structure, category)

    def ensure_include(self, main_file: Path, target: str, comment: str) -> bool:
        """Make sure `target` (a path relative to the config directory, no glob) is included:
        if no `#include`/`#tryinclude` names it, append `; comment` and `#include target` to
        `main_file`. The target file is created (empty) in the document when missing.
        Returns True when the include line was added."""
        if not _INCLUDE_TARGET.fullmatch(target) or ".." in target.split("/"):
            raise InvalidNameError(f"include target {target!r}: a plain relative path only")
        comments = _comment_lines(comment)
        structure = self._struct()
        path = self.main.parent / target
        file = self._files.get(self._key(path)) or self._try_open(path)
        if self._is_included(structure, path):
            if file is None:
                self._create(path)
                self._structure = None
            return False
        includer = self._files.get(self._key(main_file))
        if includer is None or includer.loads == 0:
            raise UnknownFileError(f"{main_file}: not a file the reader reads")
        self._check_end(includer)
        if file is None:
            self._create(path)
        self._append_lines(includer, [*(f"; {c}" for c in comments), f"#include {target}"])
        self._structure = None  # the included text changes what follows: read again
        return True

    # -- loading -----------------------------------------------------------------------

    def _scan(self) -> Structure:
        store = LineStore()
        for file in self._files.values():
            store.add_file(file, self._store.lines(file))
            file.reset()
        self._store = store
        structure = Structure(self.main, store, self._open, self._glob_all)
        try:
            structure.scan()
        except RejectedError as err:
            raise ConfigRejectedError(err.path, err.line, err.reason) from None
        self._structure = structure
        return structure

    def _struct(self) -> Structure:
        return self._structure if self._structure is not None else self._scan()

    def _open(self, path: Path) -> TextFile:
        found = self._files.get(self._key(path))
        if found is not None:
            return found
        data = self._read_bytes(path)
        file = TextFile(path, data)
        self._store.add_file(file, data.decode("utf-8", "surrogateescape").split("\n"))
        self._files[self._key(path)] = file
        return file

    def _try_open(self, path: Path) -> TextFile | None:
        try:
            return self._open(path)
        except OSError:
            return None

    def _create(self, path: Path) -> TextFile:
        file = TextFile(path, None)
        self._store.add_file(file, [""])
        self._files[self._key(path)] = file
        self._touched.add(self._key(path))
        return file

    def _glob_all(self, pattern: str) -> list[Path]:
        """The injected glob, plus files that exist only in this document."""
        found = list(self._glob(pattern))
        known = {os.path.normpath(str(p)) for p in found}
        depth = pattern.count("/")
        for key, file in self._files.items():
            fresh = file.created and key not in known and key.count("/") == depth
            if fresh and fnmatch.fnmatchcase(key, os.path.normpath(pattern)):
                found.append(file.path)
        return sorted(found)

    def _key(self, path: Path) -> str:
        full = path if path.is_absolute() else self.main.parent / path
        return os.path.normpath(str(full))

    # -- looking up --------------------------------------------------------------------

    def _lookup(self, obj_type: str, obj_id: str) -> Cat:
        structure = self._struct()
        template = False
        for category in structure.by_name.get(fold(obj_id), []):
            if category.name != obj_id or structure.type_of(category) != obj_type:
                continue
            if not category.is_template:
                structure.resolve(category)
                return category
            template = True
        if template:
            raise TemplateOnlyError(f"'{obj_id}' is only a template of type {obj_type}")
        raise UnknownObjectError(f"no {obj_type} '{obj_id}'")

    def _editable(self, obj_type: str, obj_id: str, keys: frozenset[str] = frozenset()) -> Cat:
        """The object, if editing its `keys` (or deleting it) changes no other object."""
        structure = self._struct()
        category = self._lookup(obj_type, obj_id)
        if structure.heirs(category):
            raise UnsafeEditError(
                f"'{obj_id}' ({obj_type}) is copied as a template by other sections: "
                "changing it would change them too"
            )
        for filter_, seq in structure.filters.get(category.key, []):
            if seq > category.seq and _filter_reads(filter_, keys):
                raise UnsafeEditError(
                    f"a later [{obj_id}](+{filter_}) chooses its section by these options: "
                    "changing them could move it to another section"
                )
        for piece in category.pieces:
            self._single_load(piece.file)
        self._struct().materialize(category)
        return category

    def _own_lines(self, category: Cat, keys: frozenset[str]) -> list[int]:
        structure = self._struct()
        own = []
        for entry in category.entries:
            if isinstance(entry, int):
                content = structure.content(entry)
                parsed = parse_option(content) if content else None
                if parsed is not None and fold(parsed[0]) in keys:
                    own.append(entry)
        return own

    # -- single-valued and accumulating options ----------------------------------------
    # Every edit first checks and renders everything it will write, then changes the lines:
    # a refusal leaves the document as it was.

    def _set_single(self, obj_type: str, obj_id: str, key: str, value: str) -> None:
        category = self._editable(obj_type, obj_id, frozenset({key}))
        found = self._struct().expand(category)
        last = next((v for v in reversed(found) if v.key == key), None)
        if last is not None and not last.inherited:
            self._commit_text(last.line, self._rewritten(last.line, key, value))
            return
        piece = self._piece_for(category, None if last is None else last.via)
        after = self._anchor(category, piece, frozenset())
        texts = self._new_texts(category, after, [(key, value)])
        self._put_lines(category, piece, after, texts)

    def _set_many(self, obj_type: str, obj_id: str, key: str, values: list[str]) -> None:
        category = self._editable(obj_type, obj_id, frozenset({key}))
        self._replace_own(category, frozenset({key}), [(key, v) for v in values])

    def _replace_own(
        self, category: Cat, keys: frozenset[str], lines: list[tuple[str, str]]
    ) -> None:
        """Replace the object's own lines of `keys` by `lines`: at the first own line when no
        template copied after it sets them, else as an override after the last such copy."""
        structure = self._struct()
        own = self._own_lines(category, keys)
        for lid in own:
            self._touchable(lid)
        found = structure.expand(category)
        last_via = max((v.via for v in found if v.inherited and v.key in keys), default=-1)
        if own and lines and category.entries.index(own[0]) > last_via:
            key, value = lines[0]
            first = self._rewritten(own[0], key, value, rekey=True)
            rest = self._new_texts(category, own[0], lines[1:])
            self._commit_text(own[0], first)
            piece = self._piece_of_index(category, category.entries.index(own[0]))
            self._put_lines(category, piece, own[0], rest)
            for lid in own[1:]:
                self._remove_line(category, lid)
            return
        piece = self._piece_for(category, last_via if last_via >= 0 else None)
        after = self._anchor(category, piece, frozenset(own))
        texts = self._new_texts(category, after, lines)
        for lid in own:
            self._remove_line(category, lid)
        self._put_lines(category, piece, after, texts)

    def _piece_for(self, category: Cat, via: int | None) -> int:
        """The piece whose header copied the template entry `via` (None: the first piece)."""
        if via is None:
            return 0
        entry = category.entries[via]
        assert isinstance(entry, Inherit)
        for index, piece in enumerate(category.pieces):
            if piece.header == entry.header:
                return index
        raise UnsafeEditError(f"{self._where(entry.header)}: unusual `(+)` header")

    def _anchor(self, category: Cat, piece_index: int, skip: frozenset[int]) -> int:
        """The line new option lines of the piece go after: its last option line in the
        header's file (not one of `skip`), else the header."""
        piece = category.pieces[piece_index]
        end = self._piece_end(category, piece_index)
        for index in range(end - 1, piece.start - 1, -1):
            entry = category.entries[index]
            if not isinstance(entry, int) or entry in skip:
                continue
            if self._store.file[entry] is piece.file:
                self._touchable(entry)
                return entry
        self._touchable(piece.header)
        return piece.header

    # -- line edits --------------------------------------------------------------------

    def _rewritten(self, lid: int, key: str, value: str, *, rekey: bool = False) -> str:
        """Option line `lid` with a new value (and with rekey, a new key), checked."""
        self._touchable(lid)
        bom = lid in self._struct().bom_lines
        parts = split_option(self._store.text[lid], bom=bom)
        if parts is None or (not rekey and fold(parts.key) != key):
            raise UnsafeEditError(f"{self._where(lid)}: cannot split this option line")
        if rekey:
            parts = dataclasses.replace(parts, key=key)
        return self._checked_text(parts.with_value(value), key, value, bom=bom)

    def _new_texts(self, category: Cat, after: int, lines: list[tuple[str, str]]) -> list[str]:
        """New option lines to follow line `after`, in its layout (or the object's)."""
        raw = self._store.text[after]
        style = split_option(raw, bom=after in self._struct().bom_lines)
        if style is None or after in (p.header for p in category.pieces):
            style = self._style(category)
        eol = eol_of(raw)
        return [self._checked_text(style.new_line(k, v, eol), k, v, bom=False) for k, v in lines]

    def _checked_text(self, text: str, key: str, value: str, *, bom: bool) -> str:
        """`text`, after checking that the reader reads exactly key = value from it."""
        body = text[1:] if bom and text.startswith(BOM) else text
        parsed = parse_option(plain_content(body) or "=") if is_plain(body) else None
        if parsed is None or parsed[1:] != (value, False) or fold(parsed[0]) != key:
            raise InvalidValueError(f"{key} = {value!r} cannot be written as one option line")
        if line_bytes(text) > MAX_LINE_BYTES:
            raise InvalidValueError(f"{key}: the line would be longer than Asterisk reads")
        return text

    def _commit_text(self, lid: int, text: str) -> None:
        structure = self._struct()
        self._store.text[lid] = text
        if lid in structure.bom_lines:
            structure.overrides[lid] = plain_content(text[1:] if text.startswith(BOM) else text)
        else:
            structure.overrides.pop(lid, None)
        self._touch(self._store.file[lid])

    def _put_lines(self, category: Cat, piece_index: int, after: int, texts: list[str]) -> None:
        """Insert checked option lines after line `after` (an own line or a piece header)."""
        if not texts:
            return
        file = self._store.file[after]
        ids = [self._store.new_line(file, text) for text in texts]
        position = file.ids.index(after) + 1
        file.ids[position:position] = ids
        piece = category.pieces[piece_index]
        index = piece.start if after == piece.header else category.entries.index(after) + 1
        before = category.seqs[index - 1] if index else category.seq
        category.entries[index:index] = ids
        category.seqs[index:index] = array("d", [before] * len(ids))
        for later in category.pieces[piece_index + 1 :]:
            later.start += len(ids)
        self._touch(file)

    def _style(self, category: Cat) -> OptionParts:
        """The layout of the object's first own option line, else ` = `."""
        structure = self._struct()
        for entry in category.entries:
            if isinstance(entry, int) and is_plain(self._store.text[entry]):
                parts = split_option(self._store.text[entry], bom=entry in structure.bom_lines)
                if parts is not None:
                    return parts
        return DEFAULT_STYLE

    def _remove_line(self, category: Cat, lid: int) -> None:
        file = self._store.file[lid]
        position = file.ids.index(lid)
        self._delete_span(file, position, position + 1)
        index = category.entries.index(lid)
        del category.entries[index]
        del category.seqs[index]
        for piece in category.pieces:
            if piece.start > index:
                piece.start -= 1

    def _piece_end(self, category: Cat, piece_index: int) -> int:
        later = category.pieces[piece_index + 1 : piece_index + 2]
        return later[0].start if later else len(category.entries)

    def _piece_of_index(self, category: Cat, index: int) -> int:
        found = 0
        for number, piece in enumerate(category.pieces):
            if piece.start <= index:
                found = number
        return found

    def _delete_span(self, file: TextFile, start: int, end: int) -> None:
        """Remove lines start..end-1 of `file` (positions); a BOM the reader drops moves on."""
        if start >= end:
            return
        structure = self._struct()
        lids = file.ids[start:end]
        bom = start == 0 and lids[0] in structure.bom_lines
        bom = bom and self._store.text[lids[0]].startswith(BOM)
        del file.ids[start:end]
        for lid in lids:
            self._store.text[lid] = ""
            structure.overrides.pop(lid, None)
            structure.bom_lines.discard(lid)
        if bom:
            self._give_bom(structure, file)
        self._touch(file)

    def _give_bom(self, structure: Structure, file: TextFile) -> None:
        if not file.ids:
            file.ids.append(self._store.new_line(file, ""))
        first = file.ids[0]
        structure.overrides[first] = structure.content(first)
        structure.bom_lines.add(first)
        self._store.text[first] = BOM + self._store.text[first]

    def _append_lines(self, file: TextFile, texts: list[str]) -> list[int]:
        """Add lines at the end of `file`, after one blank line, in its line endings."""
        if file.eol is None:
            file.eol = _file_eol(self._store.lines(file))
        eol = file.eol
        ids = file.ids
        if not ids:
            ids.append(self._store.new_line(file, ""))
        if self._store.text[ids[-1]] != "":
            last = ids[-1]  # no newline at the end: end that line first
            if eol and not self._store.text[last].endswith("\r"):
                self._store.text[last] += eol
            ids.append(self._store.new_line(file, ""))
        real = ids[:-1]
        blank = [""] if real and not is_blank(self._store.text[real[-1]]) else []
        new = [self._store.new_line(file, t + eol) for t in [*blank, *texts]]
        ids[len(ids) - 1 : len(ids) - 1] = new
        self._touch(file)
        return new[len(blank) :]

    def _touch(self, file: TextFile) -> None:
        self._touched.add(self._key(file.path))

    # -- checks ------------------------------------------------------------------------

    def _touchable(self, lid: int) -> None:
        """A line may be changed, removed or followed by new lines only if that cannot
        change how any other line reads."""
        file = self._store.file[lid]
        self._single_load(file)
        if not is_plain(self._store.text[lid]):
            raise UnsafeEditError(f"{self._where(lid)}: line is part of a ';--' block comment")

    def _single_load(self, file: TextFile) -> None:
        if file.loads > 1:
            raise UnsafeEditError(f"{file.path} is included {file.loads} times")

    def _check_end(self, file: TextFile) -> None:
        """Lines can be appended to `file` without changing how anything else reads."""
        self._single_load(file)
        if file.stopped:
            raise UnsafeEditError(f"{file.path}: the reader stops early in it (an error)")
        if file.end_depth != 0:
            raise UnsafeEditError(f"{file.path}: ends inside a ';--' block comment")
        structure = self._struct()
        for other in structure.files:
            lead = other.lead
            if other is not file and lead and lead[0] <= file.end_seq <= lead[1]:
                raise UnsafeEditError(
                    f"{other.path} starts with options that continue the section open "
                    f"before it; a section added at the end of {file.path} would take them"
                )

    def _check_append(self, structure: Structure, file: TextFile, name: str) -> None:
        self._check_end(file)
        later = structure.last_header_seq.get(fold(name), -1.0)
        if later > file.end_seq or structure.any_name_seq > file.end_seq:
            raise UnsafeEditError(
                f"a section named '{name}' is read after the end of {file.path}: a new one "
                "there would change which section it refers to"
            )

    def _template(self, structure: Structure, file: TextFile, name: str) -> Cat:
        found = structure.named(name)
        if not found or found[0].seq > file.end_seq:
            raise UnknownTemplateError(f"no section '{name}' before the end of {file.path}")
        return found[0]

    def _check_new_object(
        self,
        structure: Structure,
        file: TextFile,
        name: str,
        bases: list[Cat],
        pairs: list[tuple[str, str, str]],
    ) -> None:
        inherited = [
            (v.key, v.value)
            for base in bases
            for v in structure.expand(base, _count_before(base, file))
        ]
        own = [(key, value) for key, _, value in pairs]
        object_type = next((v for k, v in [*inherited, *own] if k == "type"), None)
        if object_type is None:
            raise InvalidValueError(f"section '{name}' has no type (own or from a template)")
        for category in structure.by_name.get(fold(name), []):
            same = category.name == name and not category.is_template
            if same and structure.type_of(category) == object_type:
                raise DuplicateObjectError(f"a {object_type} '{name}' exists already")

    def _is_included(self, structure: Structure, path: Path) -> bool:
        key = self._key(path)
        if any(self._key(f.path) == key for f in structure.files):
            return True
        return any(fnmatch.fnmatchcase(key, pattern) for pattern in structure.includes)

    # -- adding and deleting sections --------------------------------------------------

    def _register(
        self,
        structure: Structure,
        file: TextFile,
        new: tuple[str, Sequence[str], list[Cat]],
        lids: list[int],
    ) -> None:
        """Make the appended section part of the structure without reading everything again."""
        name, templates, bases = new
        file.appended += 1
        seq = _appended_seq(file)
        header = lids[0]
        line = len(file.ids) - len(lids)  # the new lines sit just before the final ""
        category = Cat(name, file, (header, line, seq), None)
        for token, base in zip(templates, bases, strict=True):
            add_entry(category, Inherit(base, _count_before(base, file), header, token), seq)
            structure.refs[base.key] = structure.refs.get(base.key, 0) + 1
        category.pieces.append(Piece(header, file, len(category.entries)))
        for lid in lids[1:]:
            add_entry(category, lid, seq)
        bisect.insort(structure.categories, category, key=lambda c: c.seq)
        structure.by_name.setdefault(category.key, []).append(category)
        previous = structure.last_header_seq.get(category.key, -1.0)
        structure.last_header_seq[category.key] = max(previous, seq)

    def _unregister(self, structure: Structure, category: Cat) -> None:
        structure.categories.remove(category)
        structure.by_name[category.key].remove(category)
        for entry in category.entries:
            if isinstance(entry, Inherit) and entry.token:
                structure.refs[fold(entry.token)] -= 1
            elif isinstance(entry, Inherit):
                structure.any_refs -= 1

    def _piece_span(
        self, structure: Structure, category: Cat, piece: Piece
    ) -> tuple[TextFile, int, int]:
        """Positions start..end-1 of piece.file that delete_section removes for this piece."""
        file = piece.file
        self._touchable(piece.header)
        ids = file.ids
        head = ids.index(piece.header)
        end, at_header = self._region_end(structure, category, file, head)
        stop = end
        if at_header:
            while stop - 1 > head and is_comment_line(self._store.text[ids[stop - 1]]):
                stop -= 1
        elif stop == len(ids) and stop - 1 > head and self._store.text[ids[-1]] == "":
            stop -= 1  # the text after the last newline is not a line
        start = head
        while start > 0 and is_comment_line(self._store.text[ids[start - 1]]):
            start -= 1
        if not at_header:
            while start > 0 and is_blank(self._store.text[ids[start - 1]]):
                start -= 1
        return file, start, stop

    def _region_end(
        self, structure: Structure, category: Cat, file: TextFile, head: int
    ) -> tuple[int, bool]:
        """Where the section's lines end in its file: (position, True) at the next header or
        directive, (len, False) at the end of the file. Own lines after a directive are then
        outside the span, and delete_section refuses them."""
        ids = file.ids
        depth = 0
        own = {e for e in category.entries if isinstance(e, int)}
        for position in range(head + 1, len(ids)):
            lid = ids[position]
            raw = self._store.text[lid]
            if "\0" in raw or len(raw) > MAX_LINE_BYTES // 4:
                raise UnsafeEditError(f"{self._where(lid)}: NUL or over-long line in section")
            before = depth
            kept, marks = strip_comments(reader_text(raw), depth)
            depth += sum(marks)
            content = (kept or "").strip(WHITESPACE)
            if not content:
                continue
            if content[0] in "[#" and before == 0:
                return position, True  # the next header or directive
            if content[0] in "[#" or lid not in own:
                raise UnsafeEditError(f"{self._where(lid)}: not a line of this section")
        if depth != 0:
            raise UnsafeEditError(f"{file.path}: block comment left open after the section")
        return len(ids), False

    # -- positions ---------------------------------------------------------------------

    def _line_number(self, lid: int) -> int:
        return self._store.file[lid].ids.index(lid) + 1

    def _header_line(self, category: Cat) -> int:
        return self._line_number(category.pieces[0].header) if category.pieces else category.line

    def _where(self, lid: int) -> str:
        file = self._store.file[lid]
        line = file.ids.index(lid) + 1 if lid in file.ids else "?"
        return f"{file.path}:{line}"


# -- helpers -----------------------------------------------------------------------------


def _read_file(path: Path) -> bytes:
    return path.read_bytes()


def _option_name(option: str) -> str:
    """The reader's key of an option name this module writes."""
    if not isinstance(option, str) or not _OPTION_NAME.fullmatch(option):
        raise InvalidNameError(f"option name {option!r}")
    return fold(option)


def _option_key(option: str) -> str:
    """As _option_name, for an option of an existing object (its type cannot change)."""
    key = _option_name(option)
    if key == "type":
        raise InvalidNameError("'type' decides what the object is; delete and add it instead")
    return key


def _checked_value(value: str) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(f"value {value!r} is not text")
    if any(c in value for c in "\r\n\0"):
        raise InvalidValueError(f"value {value!r}: CR, LF and NUL cannot be written")
    if value != value.strip(WHITESPACE):
        raise InvalidValueError(f"value {value!r}: Asterisk trims white space at the ends")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValueError(f"value {value!r} is not valid Unicode") from None
    return value


def _codec_list(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):
        return [item.strip(WHITESPACE) for item in value.split(",")] if value else []
    return list(value)


def _checked_codecs(codecs: Sequence[str]) -> list[str]:
    names = list(codecs)
    for name in names:
        if not isinstance(name, str) or not _CODEC.fullmatch(name):
            raise InvalidValueError(f"codec name {name!r}")
    if len({fold(n) for n in names}) != len(names):
        raise InvalidValueError(f"codec list {names!r} names a codec twice")
    return names


def _check_section_name(name: str) -> None:
    ok = isinstance(name, str) and _SECTION_NAME.fullmatch(name) is not None
    if not ok or len(name.encode("utf-8", "surrogatepass")) > 79:
        raise InvalidNameError(f"section name {name!r}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidNameError(f"section name {name!r} is not valid Unicode") from None


def _check_template_name(name: str) -> None:
    bad = not isinstance(name, str) or not name or name != name.strip(WHITESPACE)
    if bad or any(c in name for c in ",()[];\\\r\n\0"):
        raise InvalidNameError(f"template name {name!r}")


def _comment_lines(comment: str | None) -> list[str]:
    if comment is None:
        return []
    if "\r" in comment or "\0" in comment:
        raise InvalidValueError("a comment cannot hold CR or NUL")
    return [line.rstrip(WHITESPACE) for line in comment.split("\n")]


def _file_eol(lines: list[str]) -> str:
    """The file's line ending: "\\r" when most of its lines end with CRLF."""
    real = lines[:-1]  # the last piece has no line ending (it is "" after a final newline)
    crlf = sum(1 for line in real if line.endswith("\r"))
    return "\r" if real and crlf * 2 > len(real) else ""


def _appended_seq(file: TextFile) -> float:
    """A reading position for the n-th section appended to `file`: after its last line, before
    whatever is read after it. A file included last ends where its includer ends: the deeper
    file's additions come first."""
    return file.end_seq - 0.5 - file.depth * 0.04 + file.appended * 1e-8


def _filter_reads(filter_: str, keys: frozenset[str]) -> bool:
    """Whether a `(+filter)` looks at options named like `keys` (its names are regexes)."""
    for part in filter_.split("&"):
        name = part.partition("=")[0].strip(WHITESPACE)
        if name == "TEMPLATES":
            continue
        try:
            pattern = re.compile(name, re.IGNORECASE)
        except re.error:
            continue  # the reader then matches nothing
        if any(pattern.search(key) for key in keys):
            return True
    return False


def _count_before(base: Cat, file: TextFile) -> int:
    """How many of the template's entries the reader has read when it reaches file's end."""
    return bisect.bisect_right(base.seqs, file.end_seq)  # its last line is at end_seq


def _merged(spans: list[tuple[TextFile, int, int]]) -> list[tuple[TextFile, int, int]]:
    """Spans of the same file joined where they touch, ordered by file then position."""
    out: list[tuple[TextFile, int, int]] = []
    for file, start, end in sorted(spans, key=lambda s: (id(s[0]), s[1])):
        if out and out[-1][0] is file and start <= out[-1][2]:
            out[-1] = (file, out[-1][1], max(end, out[-1][2]))
        else:
            out.append((file, start, end))
    return out
