"""Bulk import and export in the create body's columns.

CSV: a header row naming columns of the create body (``extension`` is required; ``password``,
``context``, ``callerid``, ``codecs``, ``transport``, ``templates``, ``max_contacts``) and free
options as ``endpoint.<option>``, ``auth.<option>``, ``aor.<option>``. Lists (codecs, templates)
are separated by ``|`` or ``,``. An empty cell means "not given" (an empty password is generated).
JSON lines: one create body per line. Every row is parsed and checked on its own, so an import
that fails lists every bad row with its line number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ispbx.manage.requests import CreateEndpoint

COLUMNS = (
    "extension",
    "password",
    "context",
    "callerid",
    "codecs",
    "transport",
    "templates",
    "max_contacts",
)
LIST_COLUMNS = frozenset({"codecs", "templates"})
OBJECTS = ("endpoint", "auth", "aor")
MAX_ROWS = 20_000


@dataclass
class ImportRow:
    line: int
    extension: str
    request: CreateEndpoint | None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.request is not None and not self.errors


class ImportFormatError(Exception):
    """The upload as a whole cannot be read (no header, unknown columns, too many rows)."""


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.replace("|", ",").split(",") if part.strip()]


def _check_header(header: list[str]) -> None:
    if "extension" not in header:
        raise ImportFormatError("line 1: the header row has no 'extension' column")
    for name in header:
        kind, dot, option = name.partition(".")
        if name not in COLUMNS and not (dot and kind in OBJECTS and option):
            known = ", ".join(COLUMNS)
            raise ImportFormatError(
                f"line 1: unknown column {name!r} (known: {known}, endpoint.<option>, "
                "auth.<option>, aor.<option>)"
            )


def _body_of(cells: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    options: dict[str, dict[str, str]] = {}
    for name, raw in cells.items():
        value = raw.strip()
        if not value:
            continue
        kind, dot, option = name.partition(".")
        if dot:
            options.setdefault(kind, {})[option] = value
        elif name in LIST_COLUMNS:
            body[name] = _split_list(value)
        else:
            body[name] = value
    if options:
        body["options"] = options
    return body


def _row(line: int, body: Mapping[str, Any]) -> ImportRow:
    extension = str(body.get("extension", ""))
    try:
        return ImportRow(line, extension, CreateEndpoint.model_validate(body))
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(p) for p in error['loc']) or 'row'}: {error['msg']}"
            for error in exc.errors()
        ]
        return ImportRow(line, extension, None, errors)


def parse_csv(text: str) -> list[ImportRow]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        return _csv_rows(reader)
    except csv.Error as exc:
        raise ImportFormatError(f"line {reader.line_num}: not CSV: {exc}") from None


def _csv_rows(reader: Any) -> list[ImportRow]:
    header = next(reader, None)
    if header is None:
        raise ImportFormatError("the upload is empty")
    header = [name.strip() for name in header]
    _check_header(header)
    rows: list[ImportRow] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise ImportFormatError(f"more than {MAX_ROWS} rows")
        line = reader.line_num
        if len(cells) != len(header):
            row = ImportRow(line, cells[0].strip() if cells else "", None)
            row.errors.append(f"{len(cells)} cells, the header has {len(header)}")
            rows.append(row)
            continue
        rows.append(_row(line, _body_of(dict(zip(header, cells, strict=True)))))
    return rows


def parse_jsonl(text: str) -> list[ImportRow]:
    rows: list[ImportRow] = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(rows) >= MAX_ROWS:
            raise ImportFormatError(f"more than {MAX_ROWS} rows")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            rows.append(ImportRow(line, "", None, [f"not JSON: {exc}"]))
            continue
        if not isinstance(body, dict):
            rows.append(ImportRow(line, "", None, ["a line must be a JSON object"]))
            continue
        rows.append(_row(line, body))
    return rows


def export_csv(rows: Iterable[Mapping[str, str]], columns: Iterable[str] = COLUMNS) -> str:
    """Rows (column → text) as CSV in the import's columns; cells a spreadsheet would run as a
    formula get a leading ``'``."""
    names = list(columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_defused(row.get(name, "")) for name in names])
    return out.getvalue()


def _defused(text: str) -> str:
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") and not text[1:2].isdigit() else text
