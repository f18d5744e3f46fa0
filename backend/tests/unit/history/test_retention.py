"""The periodic prune task."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from ispbx.history import (
    Database,
    DatabaseUnavailable,
    EventKind,
    HistoryEvent,
    HistoryQueries,
    HistoryStore,
    PruneTask,
)
from tests.unit.history.fixtures import T0


async def test_the_task_prunes_past_the_retention_and_keeps_running(database: Database) -> None:
    old = [HistoryEvent("pbx", "101", EventKind.RTT, T0 - timedelta(days=d)) for d in (100, 95)]
    recent = HistoryEvent("pbx", "101", EventKind.RTT, T0 - timedelta(days=10))
    await HistoryStore(database).write_events([*old, recent])
    queries = HistoryQueries(database)
    task = PruneTask(queries, days=90, interval=0.05, first_delay=0, clock=lambda: T0)
    await task.start()
    try:
        for _ in range(200):
            if task.last_pruned is not None:
                break
            await asyncio.sleep(0.01)
        assert task.last_pruned == 2
        assert await queries.count_events() == 1
    finally:
        await task.stop()


async def test_a_failing_prune_is_kept_as_the_last_error_and_retried(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    async def failing(self: HistoryQueries, older_than: object) -> int:
        nonlocal calls
        calls += 1
        raise DatabaseUnavailable("history database x: connection refused")

    monkeypatch.setattr(HistoryQueries, "prune", failing)
    task = PruneTask(HistoryQueries(database), interval=0.02, first_delay=0)
    await task.start()
    try:
        for _ in range(200):
            if calls >= 2:
                break
            await asyncio.sleep(0.01)
        assert calls >= 2
        assert task.last_error == "history database x: connection refused"
    finally:
        await task.stop()


def test_nonsense_retention_is_refused(database: Database) -> None:
    with pytest.raises(ValueError):
        PruneTask(HistoryQueries(database), days=0)
