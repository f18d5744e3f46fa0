"""The recorder on a real database: batches, a bounded queue, restarts, outages (SQLite here;
the PostgreSQL integration tests run this same class, with the server stopped for the outage)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import pytest
from sqlalchemy.exc import DataError

from ispbx.history import (
    Database,
    DatabaseUnavailable,
    EventKind,
    HistoryEvent,
    HistoryQueries,
    HistoryRecorder,
    HistoryStore,
    open_database,
    upgrade,
)
from tests.unit.history.fixtures import T0, Outage

S = timedelta(seconds=1)


def ev(n: int, at: timedelta = timedelta(0)) -> HistoryEvent:
    return HistoryEvent("pbx", "101", EventKind.RTT, T0 + at + n * S, {"n": n})


async def stored(database: Database) -> list[int]:
    """Every ``n`` stored, in order (paging through all of them)."""
    found: list[int] = []
    cursor = None
    while True:
        page = await HistoryQueries(database).endpoint_history(
            "pbx", "101", limit=1000, cursor=cursor
        )
        found += [row.data["n"] for row in page.rows]
        if page.next_cursor is None:
            return sorted(found)
        cursor = page.next_cursor


async def until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def counting(
    database: Database, sizes: list[int]
) -> Callable[[Sequence[HistoryEvent]], Awaitable[None]]:
    store = HistoryStore(database)

    async def write(batch: Sequence[HistoryEvent]) -> None:
        await store.write_events(batch)
        sizes.append(len(batch))

    return write


class TestRecorder:
    async def test_events_are_written_in_batches_of_at_most_batch_size(
        self, database: Database
    ) -> None:
        sizes: list[int] = []
        recorder = HistoryRecorder(
            database, batch_size=4, interval=0.05, writer=counting(database, sizes)
        )
        await recorder.start()
        for n in range(10):
            recorder.record(ev(n))
        assert await recorder.flush(10)
        await recorder.stop()
        assert await stored(database) == list(range(10))
        assert sum(sizes) == 10
        assert max(sizes) <= 4
        state = recorder.state()
        assert (state.state, state.written, state.queued, state.dropped) == ("ok", 10, 0, 0)

    async def test_a_quiet_trickle_is_written_within_the_interval(self, database: Database) -> None:
        recorder = HistoryRecorder(database, interval=0.05)
        await recorder.start()
        try:
            recorder.record(ev(1))
            await until(lambda: recorder.state().written == 1, 5, "the lone event")
        finally:
            await recorder.stop()

    async def test_a_full_queue_drops_the_oldest_and_counts_them(self, database: Database) -> None:
        recorder = HistoryRecorder(database, queue_size=5)
        for n in range(8):  # not started: nothing drains the queue
            recorder.record(ev(n))
        state = recorder.state()
        assert (state.queued, state.dropped) == (5, 3)
        await recorder.start()
        assert await recorder.flush(10)
        await recorder.stop()
        assert await stored(database) == [3, 4, 5, 6, 7]
        assert recorder.state().dropped == 3

    async def test_stop_writes_what_is_still_queued(self, database: Database) -> None:
        recorder = HistoryRecorder(database, interval=10.0)  # would wait 10 s for a batch
        await recorder.start()
        recorder.record_many(ev(n) for n in range(3))
        await recorder.stop(timeout=5)
        assert await stored(database) == [0, 1, 2]

    async def test_a_restart_keeps_yesterdays_rows(self, database_url: str) -> None:
        yesterday = -timedelta(days=1)
        first_db = await open_database(database_url)
        await upgrade(first_db)
        first = HistoryRecorder(first_db)
        await first.start()
        first.record_many(ev(n, yesterday) for n in range(3))
        await first.stop()
        await first_db.close()

        second_db = await open_database(database_url)
        try:
            await upgrade(second_db)
            second = HistoryRecorder(second_db)
            await second.start()
            second.record(ev(10))
            await second.stop()
            rows = (await HistoryQueries(second_db).endpoint_history("pbx", "101")).rows
            assert [row.data["n"] for row in rows] == [10, 2, 1, 0]
            assert rows[-1].occurred_at == T0 + yesterday
        finally:
            await second_db.close()

    async def test_an_outage_queues_events_and_writes_them_when_the_database_returns(
        self, database: Database, outage: Outage
    ) -> None:
        recorder = HistoryRecorder(
            database, interval=0.02, retry_initial=0.05, retry_cap=0.3, queue_size=10_000
        )
        await recorder.start()
        try:
            recorder.record(ev(0))
            await until(lambda: recorder.state().written == 1, 10, "the first write")
            outage.begin()
            started = time.perf_counter()
            recorder.record_many(ev(n) for n in range(1, 1001))  # never raises, never waits
            assert time.perf_counter() - started < 0.5
            await until(lambda: recorder.state().state == "unavailable", 30, "unavailable")
            state = recorder.state()
            assert state.last_error
            assert "\n" not in state.last_error
            assert state.queued == 1000
            assert state.dropped == 0
            went_down = state.since
            recorder.record(ev(1001))  # still fine while down
            outage.end()
            await until(lambda: recorder.state().queued == 0, 60, "the queued events written")
            state = recorder.state()
            assert state.state == "ok"
            assert state.since > went_down
            assert state.written == 1002
            assert await stored(database) == list(range(1002))
        finally:
            outage.end()
            await recorder.stop()

    async def test_stop_during_an_outage_ends_within_its_timeout(
        self, database: Database, outage: Outage
    ) -> None:
        recorder = HistoryRecorder(database, interval=0.02, retry_initial=0.05)
        await recorder.start()
        outage.begin()
        try:
            recorder.record(ev(1))
            await until(lambda: recorder.state().state == "unavailable", 30, "unavailable")
            started = time.monotonic()
            await recorder.stop(timeout=1.0)
            assert time.monotonic() - started < 15  # one in-flight attempt may finish first
            assert recorder.state().queued == 1
        finally:
            outage.end()


async def test_a_row_the_database_refuses_is_dropped_and_the_rest_written(
    database: Database,
) -> None:
    store = HistoryStore(database)

    async def picky(batch: Sequence[HistoryEvent]) -> None:
        if any(event.data["n"] == 2 for event in batch):
            cause = DataError("INSERT", {}, ValueError("value too long"))
            raise DatabaseUnavailable("value too long") from cause
        await store.write_events(batch)

    recorder = HistoryRecorder(database, interval=0.02, writer=picky)
    recorder.record_many(ev(n) for n in range(5))
    await recorder.start()
    assert await recorder.flush(10)
    await recorder.stop()
    assert await stored(database) == [0, 1, 3, 4]
    state = recorder.state()
    assert (state.state, state.written, state.dropped) == ("ok", 4, 1)


async def test_events_dropped_while_their_batch_was_in_flight_are_not_counted_lost(
    database: Database,
) -> None:
    store = HistoryStore(database)
    gate = asyncio.Event()
    recorder: HistoryRecorder

    async def slow(batch: Sequence[HistoryEvent]) -> None:
        if not gate.is_set():  # the queue is full: these push out the in-flight events
            for n in range(100, 103):
                recorder.record(ev(n))
        await store.write_events(batch)
        gate.set()

    recorder = HistoryRecorder(database, queue_size=3, batch_size=3, writer=slow)
    recorder.record_many(ev(n) for n in range(3))
    await recorder.start()
    await gate.wait()
    assert await recorder.flush(10)
    await recorder.stop()
    assert await stored(database) == [0, 1, 2, 100, 101, 102]
    assert recorder.state().dropped == 0
    assert recorder.state().written == 6


async def test_a_writer_that_crashes_shows_in_the_state(database: Database) -> None:
    async def broken(batch: Sequence[HistoryEvent]) -> None:
        raise RuntimeError("a bug")

    recorder = HistoryRecorder(database, interval=0.01, writer=broken)
    await recorder.start()
    recorder.record(ev(1))
    await until(lambda: recorder.state().state == "unavailable", 5, "the crash to show")
    assert recorder.state().last_error == "recorder stopped: RuntimeError('a bug')"
    recorder.record(ev(2))  # still never raises
    await recorder.stop(timeout=1)


def test_events_can_be_queued_before_any_loop_runs() -> None:
    recorder = HistoryRecorder(None, queue_size=2)  # type: ignore[arg-type]
    recorder.record_many(ev(n) for n in range(3))
    assert (recorder.state().queued, recorder.state().dropped) == (2, 1)


def test_nonsense_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        HistoryRecorder(None, queue_size=0)  # type: ignore[arg-type]
