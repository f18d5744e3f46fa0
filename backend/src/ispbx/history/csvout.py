"""CSV renderings of history and availability: stable columns, a header row, ISO 8601 UTC times.

Cells that a spreadsheet would run as a formula (a SIP user agent is whatever the phone sends:
``=HYPERLINK(…)``) get a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from ispbx.history.availability import Availability
from ispbx.history.events import EventRow, iso

HISTORY_COLUMNS = (
    "id",
    "occurred_at",
    "pbx",
    "endpoint",
    "kind",
    "uri",
    "status",
    "user_agent",
    "via_address",
    "rtt_us",
    "reg_expire",
    "online",
    "state",
    "previous",
    "message",
    "data",
)
# Columns taken from ``data``; the whole of it is in the last column too.
_DATA_COLUMNS = HISTORY_COLUMNS[5:-1]

AVAILABILITY_COLUMNS = (
    "pbx",
    "endpoint",
    "since",
    "until",
    "window_seconds",
    "online_seconds",
    "offline_seconds",
    "unreachable_seconds",
    "unknown_seconds",
    "online_share",
    "offline_share",
    "unknown_share",
    "availability",
)
PERIOD_COLUMNS = ("pbx", "endpoint", "start", "end", "state", "seconds")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return "'" + text if text.startswith(_FORMULA_START) else text


def _render(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def history_csv(rows: Iterable[EventRow]) -> str:
    def line(row: EventRow) -> list[Any]:
        data = row.data
        fixed = [row.id, iso(row.occurred_at), row.pbx, row.endpoint, row.kind.value]
        return [*fixed, *(data.get(key) for key in _DATA_COLUMNS), json.dumps(data, sort_keys=True)]

    return _render(HISTORY_COLUMNS, (line(row) for row in rows))


def availability_csv(results: Iterable[Availability]) -> str:
    """One summary row per endpoint window."""

    def line(a: Availability) -> list[Any]:
        summary = a.as_dict()
        return [summary[column] for column in AVAILABILITY_COLUMNS]

    return _render(AVAILABILITY_COLUMNS, (line(a) for a in results))


def periods_csv(result: Availability) -> str:
    """The window as periods of one state each (the timeline)."""
    return _render(
        PERIOD_COLUMNS,
        (
            [
                result.pbx,
                result.endpoint,
                iso(p.start),
                iso(p.end),
                p.state.value,
                round(p.seconds, 6),
            ]
            for p in result.periods
        ),
    )
