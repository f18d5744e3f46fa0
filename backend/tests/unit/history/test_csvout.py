"""CSV renderings: header row, stable columns, ISO 8601 UTC, no formula injection."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from ispbx.history.availability import Transition, compute_availability
from ispbx.history.csvout import (
    AVAILABILITY_COLUMNS,
    HISTORY_COLUMNS,
    PERIOD_COLUMNS,
    availability_csv,
    history_csv,
    periods_csv,
)
from ispbx.history.events import EventKind, EventRow, to_us

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_history_csv_has_a_header_and_one_line_per_event() -> None:
    rows = [
        EventRow(
            7,
            "pbx",
            "101",
            EventKind.REGISTERED,
            T0,
            {
                "uri": "sip:101@127.0.0.1:5062",
                "user_agent": "Phone, v1",
                "rtt_us": 1500,
                "online": True,
            },
        ),
        EventRow(8, "pbx", None, EventKind.AMI_LOST, T0, {"message": "connection reset"}),
    ]
    table = parse(history_csv(rows))
    assert tuple(table[0]) == HISTORY_COLUMNS
    first = dict(zip(table[0], table[1], strict=True))
    assert first["id"] == "7"
    assert first["occurred_at"] == "2025-03-01T12:00:00.000000Z"
    assert first["user_agent"] == "Phone, v1"
    assert first["rtt_us"] == "1500"
    assert first["online"] == "true"
    assert first["status"] == ""
    assert '"uri": "sip:101@127.0.0.1:5062"' in first["data"]
    second = dict(zip(table[0], table[2], strict=True))
    assert second["endpoint"] == ""
    assert second["message"] == "connection reset"


def test_cells_a_spreadsheet_would_run_are_defused() -> None:
    row = EventRow(1, "pbx", "101", EventKind.REGISTERED, T0, {"user_agent": "=HYPERLINK(1)"})
    table = parse(history_csv([row]))
    assert dict(zip(table[0], table[1], strict=True))["user_agent"] == "'=HYPERLINK(1)"


def test_availability_csv_summary_and_periods() -> None:
    since = to_us(T0)
    result = compute_availability(
        "pbx",
        "101",
        since,
        since + 3_600_000_000,
        before=Transition(since - 1, EventKind.REGISTERED),
        ami_before=None,
        transitions=[Transition(since + 600_000_000, EventKind.UNREGISTERED)],
    )
    summary = parse(availability_csv([result]))
    assert tuple(summary[0]) == AVAILABILITY_COLUMNS
    line = dict(zip(summary[0], summary[1], strict=True))
    assert line["since"] == "2025-03-01T12:00:00.000000Z"
    assert line["until"] == "2025-03-01T13:00:00.000000Z"
    assert line["online_seconds"] == "600.0"
    assert line["offline_seconds"] == "3000.0"
    periods = parse(periods_csv(result))
    assert tuple(periods[0]) == PERIOD_COLUMNS
    assert [p[4] for p in periods[1:]] == ["online", "offline"]
    assert periods[2][2] == (T0 + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_an_empty_listing_is_just_the_header() -> None:
    assert parse(history_csv([])) == [list(HISTORY_COLUMNS)]
