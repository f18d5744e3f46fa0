"""From a request to a plan: the candidate files and what Asterisk must show once they are loaded.

Pure and synchronous (the service runs it in a worker thread): read the file set once into a
:class:`Workspace`, check every written value against Asterisk's option table, edit the lossless
document, then validate the candidate the way Asterisk will read it — the reader parses the
candidate bytes in memory, and :func:`~ispbx.pjsip.checks.check_config` says whether each object
loads. Nothing touches the disk here.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ispbx.manage.document import (
    ConfigDocument,
    ConfigRejectedError,
    DocumentError,
    DuplicateObjectError,
    UnknownTemplateError,
    UnsafeEditError,
)
from ispbx.manage.importer import ImportRow
from ispbx.manage.readback import ObjectKey
from ispbx.manage.requests import CreateEndpoint, OptionValue, PatchEndpoint, option_text
from ispbx.pbx.state import split_names
from ispbx.pbx.sync import config_fingerprints
from ispbx.pjsip.checks import ConfigCheck, check_config
from ispbx.pjsip.model import PjsipConfig, PjsipConfigError, Section, takes_many_lines
from ispbx.pjsip.options import TEMPLATE, OptionTable, Problem
from ispbx.pjsip.parser import decode_config, default_glob, parse_file
from ispbx.pjsip.shown import shown_value
from ispbx.pjsip.store import fileset_tag

Contents = dict[Path, bytes | None]
ParsedView = tuple[PjsipConfig, ConfigCheck | None, str]  # a parse, its check, its file-set ETag
OBJECT_TYPES = ("endpoint", "auth", "aor")
NOT_COMPARED = frozenset({"type", "disallow"})


# -- refusals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    where: tuple[str | int, ...]  # e.g. ("body", "endpoint", "contxt") or ("body", "line 3")
    message: str


class Rejected(Exception):
    """422: the request (or the file it would make) breaks Asterisk's rules; nothing written."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)


class Conflict(Exception):
    """409: the change cannot be made as asked (the extension exists, a layout this service
    does not edit safely, …)."""


class NotFound(Exception):
    """404: no such extension (or version) in the files."""


# -- the workspace -------------------------------------------------------------------------


@dataclass
class Workspace:
    """The file set as read once for one change: the document, the bytes, their ETag, and the
    reader's view of them."""

    main: Path
    document: ConfigDocument
    contents: Contents
    etag: str
    config: PjsipConfig
    check: ConfigCheck | None = None

    @functools.cached_property
    def templates(self) -> dict[str, Section]:
        """The templates of the files as read (the first of each name, as Asterisk finds it)."""
        found: dict[str, Section] = {}
        for section in self.config.sections:
            if section.is_template:
                found.setdefault(section.name, section)
        return found

    @classmethod
    def read(cls, main: Path, parsed: ParsedView | None = None) -> Workspace:
        """Read the file set; ``parsed`` (the config store's parse, its check and its ETag) is
        used instead of parsing again when the files are still the ones it read."""
        contents: Contents = {}

        def read(path: Path) -> bytes:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                contents[path] = None
                raise
            contents[path] = data
            return data

        try:
            document = ConfigDocument.load(main, read=read)
        except ConfigRejectedError as exc:
            raise Rejected([FieldError(("config",), str(exc))]) from None
        etag = fileset_tag(contents)
        if parsed is not None and parsed[2] == etag:
            return cls(main, document, contents, etag, parsed[0], parsed[1])
        return cls(main, document, contents, etag, parse_candidate(main, contents, {}))


def parse_candidate(
    main: Path, contents: Mapping[Path, bytes | None], changed: Contents
) -> PjsipConfig:
    """The reader's view of the file set with ``changed`` applied (raises Rejected)."""

    def read_text(path: Path) -> str:
        if path in changed:
            data = changed[path]
        elif path in contents:
            data = contents[path]
        else:
            data = path.read_bytes()
        if data is None:
            raise FileNotFoundError(path)
        return decode_config(data)

    def glob(pattern: str) -> list[Path]:
        found = {p for p in default_glob(pattern) if changed.get(p, b"") is not None}
        found |= {
            p
            for p, data in changed.items()
            if data is not None and fnmatch.fnmatch(str(p), pattern)
        }
        return sorted(found)

    try:
        return parse_file(main, read_text=read_text, glob=glob)
    except PjsipConfigError as exc:
        raise Rejected([FieldError(("config",), f"the file would be rejected: {exc}")]) from None


# -- plans ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """One change, ready to write: the candidate files (None: remove the file), the reader's
    view before and after, and the extensions whose objects must read back as planned."""

    operation: str
    extensions: list[str]
    files: Contents
    before: PjsipConfig
    after: PjsipConfig
    check: ConfigCheck
    password: str | None = None
    passwords: dict[str, str] = field(default_factory=dict)  # generated ones, by extension
    kept: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def expectations(self) -> dict[ObjectKey, dict[str, str] | None]:
        return expectations(self.before, self.after, self.extensions)

    def diff(self, previous: Mapping[Path, bytes | None]) -> dict[str, str]:
        """A unified diff per changed file."""
        return {
            str(path): unified_diff(path, previous.get(path), new)
            for path, new in self.files.items()
        }


def unified_diff(path: Path, old: bytes | None, new: bytes | None) -> str:
    before = decode_config(old or b"").splitlines(keepends=True)
    after = decode_config(new or b"").splitlines(keepends=True)
    name = str(path)
    # difflib matches the whole sequences (a tenth of a second for a 20,000-line file): give
    # it only what lies between the common head and tail, with the context lines around.
    start, end_before, end_after = _differing_span(before, after, DIFF_CONTEXT)
    lines = difflib.unified_diff(
        before[start:end_before],
        after[start:end_after],
        fromfile="/dev/null" if old is None else f"a{name}",
        tofile="/dev/null" if new is None else f"b{name}",
        n=DIFF_CONTEXT,
    )
    return "".join(_shift_hunk(line, start) for line in lines)


DIFF_CONTEXT = 3
_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def _differing_span(before: list[str], after: list[str], context: int) -> tuple[int, int, int]:
    """Where the two differ, widened by ``context`` lines: (start, end in before, end in
    after)."""
    shortest = min(len(before), len(after))
    head = 0
    while head < shortest and before[head] == after[head]:
        head += 1
    tail = 0
    while tail < shortest - head and before[-1 - tail] == after[-1 - tail]:
        tail += 1
    start = max(0, head - context)
    keep = max(0, tail - context)
    return start, len(before) - keep, len(after) - keep


def _shift_hunk(line: str, offset: int) -> str:
    """A hunk header of a diff of the slices, numbered as in the whole files."""
    if not offset or not line.startswith("@@"):
        return line
    found = _HUNK.match(line)
    if found is None:
        return line
    old_start, old_len, new_start, new_len = found.groups()
    return (
        f"@@ -{int(old_start) + offset}{old_len or ''} +{int(new_start) + offset}{new_len or ''} @@"
        + line[found.end() :]
    )


def expectations(
    before: PjsipConfig, after: PjsipConfig, extensions: Iterable[str]
) -> dict[ObjectKey, dict[str, str] | None]:
    """Per object of each extension, the options that changed as Asterisk will show them
    (a removed option: its default), or None for an endpoint that must be gone."""
    expected: dict[ObjectKey, dict[str, str] | None] = {}
    for name in extensions:
        new = after.endpoint_config(name)
        if new is None:
            expected[("endpoint", name)] = None
            continue
        old = before.endpoint_config(name) or {}
        expected[("endpoint", name)] = changed_shown("endpoint", old, new)
        for auth in split_names(new.get("auth")) + split_names(new.get("outbound_auth")):
            expected[("auth", auth)] = changed_shown(
                "auth", before.auth(auth) or {}, after.auth(auth) or {}
            )
        for aor in split_names(new.get("aors")):
            expected[("aor", aor)] = changed_shown(
                "aor", before.aor(aor) or {}, after.aor(aor) or {}
            )
    return expected


def changed_shown(
    object_type: str, old: Mapping[str, str], new: Mapping[str, str]
) -> dict[str, str]:
    keys = (old.keys() | new.keys()) - NOT_COMPARED
    return {
        key: shown_value(object_type, key, new.get(key))
        for key in sorted(keys)
        if old.get(key) != new.get(key)
    }


class Planner:
    """Builds plans against one pjsip.conf (and its managed include file)."""

    def __init__(self, main: Path, managed: Path, table: OptionTable | None = None) -> None:
        self.main = main
        self.managed = managed
        self.table = table or OptionTable.load()

    # -- create ------------------------------------------------------------------------

    def create(self, ws: Workspace, request: CreateEndpoint) -> Plan:
        password = self._add_extension(ws, request, ("body",))
        plan = self._finish(ws, "create", [request.extension])
        if request.password is None:
            plan.password = password
        return plan

    def import_rows(self, ws: Workspace, rows: Sequence[ImportRow]) -> Plan:
        """Every row, or none: a 422 lists each bad row with its line number."""
        errors: list[FieldError] = [
            FieldError(("body", f"line {row.line}"), f"{row.extension or 'row'}: {message}")
            for row in rows
            for message in row.errors
        ]
        seen: dict[str, int] = {}
        passwords: dict[str, str] = {}
        lines: dict[str, int] = {}
        for row in rows:
            if row.request is None:
                continue
            where = ("body", f"line {row.line}")
            extension = row.request.extension
            if extension in seen:
                errors.append(FieldError(where, f"{extension}: also on line {seen[extension]}"))
                continue
            seen[extension] = lines[extension] = row.line
            try:
                generated = self._add_extension(ws, row.request, where)
            except Rejected as exc:
                errors += [FieldError(where, f"{extension}: {e.message}") for e in exc.errors]
                continue
            except Conflict as exc:
                errors.append(FieldError(where, f"{extension}: {exc}"))
                continue
            if row.request.password is None:
                passwords[extension] = generated
        if not seen and not errors:
            errors.append(FieldError(("body",), "no rows to import"))
        if errors:
            raise Rejected(errors)
        try:
            plan = self._finish(ws, "import", list(seen))
        except Rejected as exc:
            raise Rejected([self._blame(e, lines) for e in exc.errors]) from None
        plan.passwords = passwords
        return plan

    @staticmethod
    def _blame(error: FieldError, lines: Mapping[str, int]) -> FieldError:
        """A candidate problem of one imported extension, pointed at its row."""
        for extension, line in lines.items():
            if len(error.where) > 2 and error.where[2] == extension:
                return FieldError(("body", f"line {line}"), f"{extension}: {error.message}")
        return error

    def _add_extension(
        self, ws: Workspace, request: CreateEndpoint, where: tuple[str | int, ...]
    ) -> str:
        name = request.extension
        for object_type in OBJECT_TYPES:
            if ws.config.has_object(object_type, name):
                raise Conflict(f"extension {name} exists: there is already an {object_type} {name}")
        routed = self._route_templates(ws.templates, request.templates, where)
        password = request.password or secrets.token_urlsafe(12)
        sections = {
            "endpoint": self._endpoint_lines(request, routed["endpoint"]),
            "auth": self._auth_lines(request, password, routed["auth"]),
            "aor": self._aor_lines(request, routed["aor"]),
        }
        self._check_lines(sections, where)
        ws.document.ensure_include(
            self.main,
            self.managed.name,
            "endpoints created with ISPBX Manager (its API or dashboard)",
        )
        comment = f"{name}: created with ISPBX Manager"
        for object_type in OBJECT_TYPES:
            try:
                ws.document.add_section(
                    self.managed,
                    name,
                    templates=routed[object_type],
                    options=sections[object_type],
                    comment=comment if object_type == "endpoint" else None,
                )
            except (DuplicateObjectError, UnsafeEditError) as exc:
                raise Conflict(str(exc)) from None
            except UnknownTemplateError as exc:
                raise Rejected([FieldError((*where, "templates"), str(exc))]) from None
            except DocumentError as exc:
                raise Rejected([FieldError(where, str(exc))]) from None
        return password

    def _route_templates(
        self, templates: Mapping[str, Section], names: Sequence[str], where: tuple[str | int, ...]
    ) -> dict[str, list[str]]:
        """Each template goes to the section of its own (or inherited) type."""
        routed: dict[str, list[str]] = {t: [] for t in OBJECT_TYPES}
        errors = []
        for name in names:
            section = templates.get(name)
            if section is None:
                close = difflib.get_close_matches(name, templates, n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                errors.append(
                    FieldError((*where, "templates"), f"no template named {name!r}{hint}")
                )
            elif section.type not in OBJECT_TYPES:
                errors.append(
                    FieldError(
                        (*where, "templates"),
                        f"template {name!r} has no endpoint, auth or aor type",
                    )
                )
            else:
                routed[section.type].append(name)
        if errors:
            raise Rejected(errors)
        return routed

    @staticmethod
    def _needs_type(object_type: str, templates: list[str]) -> list[tuple[str, str]]:
        return [] if templates else [("type", object_type)]

    def _endpoint_lines(
        self, request: CreateEndpoint, templates: list[str]
    ) -> list[tuple[str, str]]:
        name = request.extension
        lines = self._needs_type("endpoint", templates)
        for key in ("context", "callerid", "transport"):
            value = getattr(request, key)
            if value is not None:
                lines.append((key, value))
        lines += [("auth", name), ("aors", name)]
        if request.codecs is not None:
            lines += [("disallow", "all")] + (
                [("allow", ",".join(request.codecs))] if request.codecs else []
            )
        return lines + _free_lines(request.options.endpoint)

    def _auth_lines(
        self, request: CreateEndpoint, password: str, templates: list[str]
    ) -> list[tuple[str, str]]:
        lines = self._needs_type("auth", templates)
        if not templates:
            lines.append(("auth_type", "userpass"))
        lines += [("username", request.extension), ("password", password)]
        return lines + _free_lines(request.options.auth)

    def _aor_lines(self, request: CreateEndpoint, templates: list[str]) -> list[tuple[str, str]]:
        lines = self._needs_type("aor", templates)
        if request.max_contacts is not None:
            lines.append(("max_contacts", str(request.max_contacts)))
        return lines + _free_lines(request.options.aor)

    def _check_lines(
        self, sections: Mapping[str, list[tuple[str, str]]], where: tuple[str | int, ...]
    ) -> None:
        errors = []
        for object_type, lines in sections.items():
            for key, value in lines:
                if key != "type":
                    errors += self._problems(object_type, key, value, where)
        if errors:
            raise Rejected(errors)

    def _problems(
        self, object_type: str, key: str, value: str, where: tuple[str | int, ...]
    ) -> list[FieldError]:
        return [
            FieldError((*where, object_type, key), problem_text(problem))
            for problem in self.table.check(object_type, key, value)
        ]

    # -- update ------------------------------------------------------------------------

    def update(self, ws: Workspace, extension: str, patch: PatchEndpoint) -> Plan:
        endpoint = ws.config.endpoint_config(extension)
        if endpoint is None or ws.document.find("endpoint", extension) is None:
            raise NotFound(f"no endpoint {extension} in the configuration files")
        if patch.is_empty():
            raise Rejected([FieldError(("body",), "nothing to change")])
        targets = {
            "endpoint": extension,
            "auth": next(iter(split_names(endpoint.get("auth"))), None),
            "aor": next(iter(split_names(endpoint.get("aors"))), None),
        }
        errors: list[FieldError] = []
        edits: list[Callable[[], None]] = []
        for object_type, options in patch.objects().items():
            if not options:
                continue
            target = targets[object_type]
            if target is None or ws.document.find(object_type, target) is None:
                errors.append(
                    FieldError(
                        ("body", object_type),
                        f"endpoint {extension} has no {object_type} in the files",
                    )
                )
                continue
            for key, value in options.items():
                errors += self._patch_edit(
                    ws.document, (object_type, target, key.lower()), value, edits
                )
        if errors:
            raise Rejected(errors)
        for edit in edits:
            try:
                edit()
            except UnsafeEditError as exc:
                raise Conflict(
                    f"cannot edit this layout safely, edit the file by hand: {exc}"
                ) from None
            except DocumentError as exc:
                raise Rejected([FieldError(("body",), str(exc))]) from None
        return self._finish(ws, "update", [extension])

    def _patch_edit(
        self,
        document: ConfigDocument,
        target: tuple[str, str, str],
        value: OptionValue,
        edits: list[Callable[[], None]],
    ) -> list[FieldError]:
        """Check one option of a patch; on success queue its edit."""
        object_type, name, key = target
        where = ("body", object_type, key)
        if key in ("type", "disallow"):
            why = "cannot be changed here" if key == "type" else "is set through 'allow' (a list)"
            return [FieldError(where, f"'{key}' {why}")]
        if value is None:
            if self.table.option(object_type, key) is None:
                return self._problems(object_type, key, "", ("body",))

            def remove() -> None:
                document.remove_option(object_type, name, key)

            edits.append(remove)
            return []
        values = value if isinstance(value, list) else [option_text(value)]
        if isinstance(value, list) and key != "allow" and not takes_many_lines(object_type, key):
            return [FieldError(where, f"'{key}' takes one value, not a list")]
        errors = [e for v in values for e in self._problems(object_type, key, v, ("body",))]
        if errors:
            return errors
        if key == "allow":
            codecs = [c.strip() for v in values for c in v.split(",") if c.strip()]
            edits.append(lambda: document.set_codecs(object_type, name, codecs))
        elif isinstance(value, list):
            edits.append(lambda: document.set_option(object_type, name, key, values))
        else:
            edits.append(lambda: document.set_option(object_type, name, key, values[0]))
        return []

    # -- delete ------------------------------------------------------------------------

    def delete(self, ws: Workspace, extension: str) -> Plan:
        endpoint = ws.config.endpoint_config(extension)
        if endpoint is None or ws.document.find("endpoint", extension) is None:
            raise NotFound(f"no endpoint {extension} in the configuration files")
        used = self._used_by_others(ws.config, extension)
        kept: list[str] = []
        doomed: list[tuple[str, str]] = [("endpoint", extension)]
        for object_type, key in (("auth", "auth"), ("auth", "outbound_auth"), ("aor", "aors")):
            for name in split_names(endpoint.get(key)):
                if (object_type, name) in used:
                    kept.append(f"{object_type} {name}")
                elif (
                    ws.document.find(object_type, name) is not None
                    and (object_type, name) not in doomed
                ):
                    doomed.append((object_type, name))
        for object_type, name in doomed:
            try:
                ws.document.delete_section(object_type, name)
            except UnsafeEditError as exc:
                raise Conflict(
                    f"cannot delete this layout safely, edit the file by hand: {exc}"
                ) from None
        plan = self._finish(ws, "delete", [extension])
        plan.kept = kept
        return plan

    @staticmethod
    def _used_by_others(config: PjsipConfig, extension: str) -> set[tuple[str, str]]:
        used: set[tuple[str, str]] = set()
        for name, endpoint in config.objects("endpoint").items():
            if name == extension:
                continue
            options = endpoint.options
            used |= {("auth", a) for a in split_names(options.get("auth"))}
            used |= {("auth", a) for a in split_names(options.get("outbound_auth"))}
            used |= {("aor", a) for a in split_names(options.get("aors"))}
        return used

    # -- revert ------------------------------------------------------------------------

    def revert(self, ws: Workspace, files: Mapping[Path, bytes | None]) -> Plan:
        """Put ``files`` back (the contents before a version's change)."""
        changed: Contents = {
            path: data
            for path, data in files.items()
            if ws.contents.get(path, _absent(path)) != data
        }
        if not changed:
            raise Conflict("the files already read as that version left them")
        after = parse_candidate(self.main, ws.contents, changed)
        old_prints, new_prints = config_fingerprints(ws.config), config_fingerprints(after)
        names = sorted(
            name
            for name in old_prints.keys() | new_prints.keys()
            if old_prints.get(name) != new_prints.get(name)
        )
        return self._validated(ws, "revert", names, changed, after)

    # -- the candidate -----------------------------------------------------------------

    def _finish(self, ws: Workspace, operation: str, extensions: list[str]) -> Plan:
        changed: Contents = dict(ws.document.changed_files())
        after = parse_candidate(self.main, ws.contents, changed)
        return self._validated(ws, operation, extensions, changed, after)

    def _validated(
        self,
        ws: Workspace,
        operation: str,
        extensions: list[str],
        changed: Contents,
        after: PjsipConfig,
    ) -> Plan:
        before_check = ws.check or check_config(ws.config, self.table)
        touched = frozenset(extensions) | _touched_names(ws.config, after, extensions)
        check = check_config(after, self.table, known=before_check, changed=touched)
        errors = self._unloadable(check, before_check, after, extensions)
        errors += self._references(after, extensions)
        if errors:
            raise Rejected(errors)
        warnings = [w for w in check.warnings if w not in before_check.warnings]
        return Plan(operation, extensions, changed, ws.config, after, check, warnings=warnings)

    def _unloadable(
        self, check: ConfigCheck, before: ConfigCheck, after: PjsipConfig, extensions: list[str]
    ) -> list[FieldError]:
        """Objects the change would make Asterisk refuse (those refused before are not ours)."""
        refused_before = {(c.type, c.name) for c in before.not_loadable()}
        errors = []
        for found in check.not_loadable():
            key = (found.type, found.name)
            if key in refused_before and found.name not in extensions:
                continue
            for problem in found.refusals or found.problems:
                errors.append(
                    FieldError(
                        ("config", found.type, found.name, problem.field),
                        f"{found.location}: {problem_text(problem)}",
                    )
                )
        return errors

    def _references(self, after: PjsipConfig, extensions: list[str]) -> list[FieldError]:
        """An endpoint of the change naming an auth, AOR or transport that does not exist."""
        known: dict[str, frozenset[str]] = {t: after.names(t) for t in ("auth", "aor", "transport")}
        known[TEMPLATE] = after.template_names()
        errors = []
        for name in extensions:
            options = after.endpoint_config(name)
            if options is None:
                continue
            for problem in self.table.check_references("endpoint", options, known):
                errors.append(
                    FieldError(("body", "endpoint", problem.field), problem_text(problem))
                )
        return errors


def _touched_names(before: PjsipConfig, after: PjsipConfig, extensions: list[str]) -> set[str]:
    """The auths and AORs the extensions name, before and after the change."""
    names: set[str] = set()
    for config in (before, after):
        for extension in extensions:
            options = config.endpoint_config(extension) or {}
            for key in ("auth", "outbound_auth", "aors"):
                names.update(split_names(options.get(key)))
    return names


def _free_lines(options: Mapping[str, OptionValue]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for key, value in options.items():
        if value is None:
            continue
        if isinstance(value, list):
            lines += [(key, item) for item in value]
        else:
            lines.append((key, option_text(value)))
    return lines


def _absent(_path: Path) -> bytes | None:
    return None


def problem_text(problem: Problem) -> str:
    return problem.message
