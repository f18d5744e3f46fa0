"""The history database: what happened to each endpoint, who changed what, config versions.

Self-contained: plain values in, plain values out; nothing here imports the inventory, the views,
the settings or the routes. The service wires it:

- ``db = await open_database(url)`` (``DatabaseOpenError``: one line), ``await upgrade(db)``;
- ``ChangeDetector(pbx).observe(endpoint, contacts, device_state)`` in the inventory's change
  listener → events → ``HistoryRecorder.record`` (never blocks) and ``FlapDetector.note_events``;
- ``HistoryQueries`` for the routes, ``HistoryStore`` for audit rows and config versions,
  ``PruneTask`` for retention, ``HistoryRecorder.state()`` for /health;
- ``db_main(argv, url)`` for ``python -m ispbx db …``.
"""

from ispbx.history.availability import Availability, Period, Presence
from ispbx.history.changes import ChangeDetector, EndpointState, RttThreshold, endpoint_changes
from ispbx.history.csvout import availability_csv, history_csv, periods_csv
from ispbx.history.database import (
    Database,
    DatabaseOpenError,
    DatabaseUnavailable,
    HistoryDatabaseError,
    current_revision,
    db_main,
    downgrade,
    head_revision,
    open_database,
    upgrade,
)
from ispbx.history.events import EventKind, EventRow, HistoryEvent, parse_kinds
from ispbx.history.flapping import FlapDetector, FlapTransition
from ispbx.history.queries import HistoryQueries, InvalidQuery, Page
from ispbx.history.recorder import HistoryRecorder, RecorderState
from ispbx.history.retention import PruneTask
from ispbx.history.store import (
    AuditEntry,
    AuditResult,
    AuditRow,
    ConfigVersion,
    ConfigVersionSummary,
    FileChange,
    HistoryStore,
)

__all__ = [
    "AuditEntry",
    "AuditResult",
    "AuditRow",
    "Availability",
    "ChangeDetector",
    "ConfigVersion",
    "ConfigVersionSummary",
    "Database",
    "DatabaseOpenError",
    "DatabaseUnavailable",
    "EndpointState",
    "EventKind",
    "EventRow",
    "FileChange",
    "FlapDetector",
    "FlapTransition",
    "HistoryDatabaseError",
    "HistoryEvent",
    "HistoryQueries",
    "HistoryRecorder",
    "HistoryStore",
    "InvalidQuery",
    "Page",
    "Period",
    "Presence",
    "PruneTask",
    "RecorderState",
    "RttThreshold",
    "availability_csv",
    "current_revision",
    "db_main",
    "downgrade",
    "endpoint_changes",
    "head_revision",
    "history_csv",
    "open_database",
    "parse_kinds",
    "periods_csv",
    "upgrade",
]
