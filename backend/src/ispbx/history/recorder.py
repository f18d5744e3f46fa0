"""The recorder: history writes off the hot path, batched, and surviving a database outage.

``record`` is called from the inventory's synchronous change listeners, so it never awaits: it
appends to a bounded in-memory queue. A background task writes what is queued in batches, one
transaction each (after ``interval`` or as soon as ``batch_size`` rows wait). When the database
fails, the batch stays queued and is retried with a capped exponential backoff; the recorder's
state says ``unavailable`` (for /health) and nothing is raised to the callers. When the queue is
full the *oldest* event is dropped and counted: the newest events say what the state is now, which
matters more once the database returns than how an outage began.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, Literal

from sqlalchemy.exc import DataError, IntegrityError, StatementError

from ispbx.history.database import Database, DatabaseUnavailable
from ispbx.history.events import HistoryEvent, iso, utc_now
from ispbx.history.store import HistoryStore

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 50_000
DEFAULT_BATCH_SIZE = 500
DEFAULT_INTERVAL = 0.2
RETRY_INITIAL = 0.5
RETRY_CAP = 30.0
STOP_TIMEOUT = 5.0

Writer = Callable[[Sequence[HistoryEvent]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RecorderState:
    """What /health shows of the history."""

    state: Literal["ok", "unavailable"]
    since: datetime
    last_error: str | None
    queued: int
    dropped: int
    written: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": iso(self.since),
            "last_error": self.last_error,
            "queued": self.queued,
            "dropped": self.dropped,
            "written": self.written,
        }


def _is_row_problem(exc: BaseException) -> bool:
    """A failure that retrying the same rows cannot fix (a value the column refuses, a value
    that cannot be serialised), as opposed to a database that is down, locked or slow."""
    cause = exc.__cause__
    if isinstance(cause, DataError | IntegrityError):
        return True
    return isinstance(cause, StatementError) and cause.orig is None


class HistoryRecorder:
    """Queue + background batch writer; ``start`` once, ``stop`` flushes (bounded by a timeout)."""

    def __init__(
        self,
        database: Database,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        interval: float = DEFAULT_INTERVAL,
        retry_initial: float = RETRY_INITIAL,
        retry_cap: float = RETRY_CAP,
        clock: Callable[[], datetime] = utc_now,
        writer: Writer | None = None,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be positive")
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.interval = interval
        self.retry_initial = retry_initial
        self.retry_cap = retry_cap
        self._clock = clock
        self._write = writer or HistoryStore(database).write_events
        self._queue: deque[HistoryEvent] = deque()
        self._in_flight = 0  # events at the head of the queue being written now
        self._dropped_in_flight = 0  # of those, dropped from the full queue meanwhile
        self._enqueued = 0
        self._settled = 0  # events that left the queue: written or dropped
        self._wake = asyncio.Event()  # something queued, or stopping
        self._full = asyncio.Event()  # a whole batch waits
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._state: Literal["ok", "unavailable"] = "ok"
        self._since = clock()
        self._last_error: str | None = None
        self._dropped = 0
        self._written = 0

    # -- the hot path ---------------------------------------------------------------------------

    def record(self, event: HistoryEvent) -> None:
        """Queue one event; never blocks, never raises for a full queue or a down database.

        Call it from the event loop's thread (the inventory's listeners run there)."""
        if len(self._queue) >= self.queue_size:
            self._queue.popleft()
            self._dropped += 1
            self._settled += 1
            if self._in_flight:  # that one was being written: if the write succeeds, it is not lost
                self._in_flight -= 1
                self._dropped_in_flight += 1
        self._queue.append(event)
        self._enqueued += 1
        self._wake.set()
        if len(self._queue) >= self.batch_size:
            self._full.set()

    def record_many(self, events: Iterable[HistoryEvent]) -> None:
        for event in events:
            self.record(event)

    def state(self) -> RecorderState:
        return RecorderState(
            self._state,
            self._since,
            self._last_error,
            len(self._queue),
            self._dropped,
            self._written,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="history-recorder")
            self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The writer ended by itself: a bug, not a database failure. Say so in the state (the
        queue keeps filling and dropping, bounded) instead of failing silently."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        log.error("history: the recorder stopped: %r", error, exc_info=error)
        self._state, self._since = "unavailable", self._clock()
        self._last_error = f"recorder stopped: {error!r}"

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:  # noqa: ASYNC109 - a deadline
        """Write what is queued (for at most ``timeout`` s), then end the task."""
        task, self._task = self._task, None
        if task is None:
            if self._queue:
                log.warning("history: %d events never written (not started)", len(self._queue))
            return
        self._stopping.set()
        self._wake.set()
        self._full.set()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._queue:
            log.warning("history: %d events not written at stop", len(self._queue))

    async def flush(self, timeout: float) -> bool:  # noqa: ASYNC109 - a deadline, not one await
        """Wait until everything queued so far is written (or dropped); False after ``timeout``."""
        target = self._enqueued
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._settled < target:
            if loop.time() >= deadline:
                return False
            self._full.set()
            await asyncio.sleep(0.01)
        return True

    # -- the writer -----------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.retry_initial
        while True:
            if not self._queue:
                if self._stopping.is_set():
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._queue) < self.batch_size and not self._stopping.is_set():
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await self._full.wait()
            if await self._write_batch():
                delay = self.retry_initial
                continue
            # Back off before retrying; a stop cuts the wait short once, for a last try soon.
            if self._stopping.is_set():
                await asyncio.sleep(min(delay, 0.5))
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
            delay = min(delay * 2, self.retry_cap)

    async def _write_batch(self) -> bool:
        """Write the head of the queue; True when it was written (or its bad rows dropped)."""
        batch = list(islice(self._queue, self.batch_size))
        self._in_flight = len(batch)
        self._dropped_in_flight = 0
        try:
            await self._write(batch)
        except DatabaseUnavailable as exc:
            self._in_flight = 0
            if _is_row_problem(exc):
                return await self._write_one_by_one(batch)
            self._failed(str(exc))
            return False
        self._done(len(batch))
        return True

    def _done(self, count: int) -> None:
        """``count`` events from the head were written: take them off the queue."""
        for _ in range(self._in_flight):
            self._queue.popleft()
        self._settled += self._in_flight
        self._dropped -= self._dropped_in_flight
        self._written += count
        self._in_flight = self._dropped_in_flight = 0
        if self._state != "ok":
            log.info("history: database available again (%d events queued)", len(self._queue))
            self._state, self._since = "ok", self._clock()

    async def _write_one_by_one(self, batch: list[HistoryEvent]) -> bool:
        """A batch with a bad row: write its rows alone, dropping (and counting) the bad ones."""
        for event in batch:
            if not self._queue or self._queue[0] is not event:
                continue  # dropped from the full queue meanwhile
            self._in_flight = 1
            self._dropped_in_flight = 0
            try:
                await self._write([event])
            except DatabaseUnavailable as exc:
                if not _is_row_problem(exc):
                    self._in_flight = 0
                    self._failed(str(exc))
                    return False
                log.warning("history: event dropped, the database refuses it: %s", exc)
                self._queue.popleft()
                self._dropped += 1
                self._settled += 1
                self._in_flight = 0
                continue
            self._done(1)
        return True

    def _failed(self, error: str) -> None:
        if self._state != "unavailable":
            log.warning("history: database unavailable, queueing events: %s", error)
            self._state, self._since = "unavailable", self._clock()
        self._last_error = error
