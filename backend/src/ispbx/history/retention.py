"""Retention: a background task that prunes events older than the retention period."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from ispbx.history.database import DatabaseUnavailable
from ispbx.history.events import utc_now
from ispbx.history.queries import HistoryQueries

log = logging.getLogger(__name__)

DEFAULT_DAYS = 90
DEFAULT_INTERVAL = 3600.0
FIRST_DELAY = 60.0  # not at start: the service has better things to do in its first minute


class PruneTask:
    """Every ``interval`` s, ``prune(now - days)``; a failing database is retried next time."""

    def __init__(
        self,
        queries: HistoryQueries,
        *,
        days: float = DEFAULT_DAYS,
        interval: float = DEFAULT_INTERVAL,
        first_delay: float = FIRST_DELAY,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if days <= 0 or interval <= 0:
            raise ValueError("retention days and interval must be positive")
        self.queries = queries
        self.retention = timedelta(days=days)
        self.interval = interval
        self.first_delay = first_delay
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.last_pruned: int | None = None
        self.last_error: str | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="history-prune")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def prune_once(self) -> int:
        """One prune now; the number of events deleted."""
        return await self.queries.prune(self._clock() - self.retention)

    async def _run(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                self.last_pruned = await self.prune_once()
                self.last_error = None
            except DatabaseUnavailable as exc:
                self.last_error = str(exc)
                log.warning("history: prune failed, retrying in %.0f s: %s", self.interval, exc)
            await asyncio.sleep(self.interval)
