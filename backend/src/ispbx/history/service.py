"""The history database as the service uses it: one per process, shared by every PBX.

Opened (and migrated) in the lifespan; the recorder writes off the hot path, the prune task keeps
the retention, the queries answer the routes, the store takes audit rows and config versions."""

from __future__ import annotations

from ispbx.history.database import Database, open_database, upgrade
from ispbx.history.queries import HistoryQueries
from ispbx.history.recorder import HistoryRecorder
from ispbx.history.retention import PruneTask
from ispbx.history.store import HistoryStore


class History:
    def __init__(self, database: Database, *, days: int) -> None:
        self.database = database
        self.recorder = HistoryRecorder(database)
        self.queries = HistoryQueries(database)
        self.store = HistoryStore(database)
        self._prune = PruneTask(self.queries, days=days)

    @classmethod
    async def open(cls, url: str, *, days: int) -> History:
        """Open and migrate; ``DatabaseOpenError`` (one line) when that cannot be done."""
        database = await open_database(url)
        try:
            await upgrade(database)
        except BaseException:
            await database.close()
            raise
        return cls(database, days=days)

    async def start(self) -> None:
        await self.recorder.start()
        await self._prune.start()

    async def stop(self) -> None:
        """Write what is queued (bounded), then close."""
        await self._prune.stop()
        await self.recorder.stop()
        await self.database.close()


async def check_database(url: str) -> None:
    """Open, migrate and close: the start's check that ``url`` works (raises DatabaseOpenError)."""
    history = await History.open(url, days=1)
    await history.database.close()
