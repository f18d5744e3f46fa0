"""Endpoint details (PJSIPShowEndpoint) fetched in the background, a few in flight.

Two queues feed one worker: ``dirty`` endpoints (an event or a reload said they changed; first)
and the ``prefetch`` walk over every endpoint after a full sync. A request for an endpoint whose
details are not fetched yet calls :meth:`DetailFetcher.fetch` directly: one bounded action,
shared by concurrent callers for the same name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from ispbx.ami import AmiError, AmiSession
from ispbx.pbx.state import EndpointDetail, Keeper, group_detail
from ispbx.tasks import cancel_and_wait

log = logging.getLogger(__name__)
DETAIL_TIMEOUT = 2.0
PIPELINE = 4  # PJSIPShowEndpoint actions in flight: Asterisk answers one at a time, but
# pipelining hides the round trip between them.
Fetched = Callable[[str, EndpointDetail], None]


class DetailFetcher:
    """Fetches details and hands each one to ``on_fetched(name, detail)``."""

    def __init__(
        self,
        session: AmiSession,
        keeper: Keeper,
        on_fetched: Fetched,
        fetched_at: Callable[[str], float | None],
        *,
        enabled: bool = True,
    ) -> None:
        self._session = session
        self._keeper = keeper
        self._on_fetched = on_fetched
        self._fetched_at = fetched_at
        self._enabled = enabled
        self._dirty: dict[str, None] = {}  # ordered set
        self._walk: list[str] = []
        self._walk_started = 0.0
        self._wake = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[EndpointDetail | None]] = {}
        self._worker: asyncio.Task[None] | None = None
        self.prefetch_seconds: float | None = None
        self._walking = False

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="inventory-details")

    async def stop(self) -> None:
        await cancel_and_wait(self._worker, *self._inflight.values())

    # -- what to fetch ---------------------------------------------------------------------------

    def prefetch_all(self, names: Iterable[str]) -> None:
        """Walk every endpoint once (after a full sync)."""
        if not self._enabled:
            return
        self._walk_started = time.monotonic()
        self._walking = True
        self.prefetch_seconds = None
        self._walk = list(reversed(list(names)))
        self._wake.set()

    def mark_dirty(self, name: str) -> None:
        """Fetch ``name`` again soon (before the walk goes on)."""
        if name and self._enabled:
            self._dirty[name] = None
            self._wake.set()

    def _next_name(self) -> str | None:
        if self._dirty:
            name = next(iter(self._dirty))
            del self._dirty[name]
            return name
        while self._walk:
            name = self._walk.pop()
            fetched = self._fetched_at(name)
            if fetched is None or fetched < self._walk_started:
                return name
        return None

    # -- the worker ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await asyncio.gather(*(self._drain() for _ in range(PIPELINE)))
            except Exception:  # a bug must not stop detail updates for good
                log.exception("detail fetching failed; carrying on")
                await asyncio.sleep(1)
            if self._walking and not self._walk and self._session.client is not None:
                self._walking = False
                self.prefetch_seconds = time.monotonic() - self._walk_started
                log.info("detail prefetch done in %.2f s", self.prefetch_seconds)

    async def _drain(self) -> None:
        while self._session.client is not None and (name := self._next_name()) is not None:
            await self.fetch(name)

    async def fetch(self, name: str) -> EndpointDetail | None:
        """One PJSIPShowEndpoint (≤ 2 s), shared by concurrent callers for the same name."""
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.create_task(self._fetch(name), name=f"detail-{name}")
            self._inflight[name] = task
            task.add_done_callback(lambda _t: self._inflight.pop(name, None))
        return await asyncio.shield(task)

    async def _fetch(self, name: str) -> EndpointDetail | None:
        try:
            items = await self._session.list_action(
                {"Action": "PJSIPShowEndpoint", "Endpoint": name}, timeout=DETAIL_TIMEOUT
            )
        except AmiError as exc:
            log.debug("PJSIPShowEndpoint %s: %s", name, exc)
            return None
        detail = group_detail(items, self._keeper)
        if detail is not None:
            self._on_fetched(name, detail)
        return detail
