"""``module reload res_pjsip.so`` over AMI, as the write path needs it.

Asterisk answers "A reload is in progress" when another reload runs (someone's CLI, a second
service): that is retried for a while. Callers that ask while a reload of ours is running share
the next one that starts after their request, so a burst of changes costs one or two reloads.
A reload that answers success only says Asterisk ran it: what it loaded is confirmed by reading
the objects back (see :mod:`ispbx.manage.readback`).
"""

from __future__ import annotations

import asyncio
import logging

from ispbx.ami import AmiActionError, AmiError, AmiSession

log = logging.getLogger(__name__)
MODULE = "res_pjsip.so"
RELOAD_TIMEOUT = 30.0  # 10,000 endpoints reload in ~1 s; a loaded machine may need more
BUSY_RETRY = 0.25
BUSY_FOR = 20.0  # how long another party's reload may keep us waiting


class ReloadError(Exception):
    """Asterisk did not reload; ``str()`` says why (for a 502)."""


class Reloader:
    def __init__(self, session: AmiSession) -> None:
        self._session = session
        self._lock = asyncio.Lock()
        self._started = 0  # reloads started
        self._finished: dict[int, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def reload(self) -> None:
        """Reload res_pjsip, or share the next reload that starts after this call."""
        wanted = self._started + 1
        future = self._finished.get(wanted)
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._finished[wanted] = loop.create_future()
            task = loop.create_task(self._run(wanted, future), name="pjsip-reload")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.shield(future)

    async def _run(self, number: int, future: asyncio.Future[None]) -> None:
        async with self._lock:
            self._started = number
            try:
                await self._reload_once()
            except ReloadError as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)
            finally:
                self._finished.pop(number, None)

    async def _reload_once(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_FOR
        action = {"Action": "Reload", "Module": MODULE}
        while True:
            try:
                await self._session.action(action, timeout=RELOAD_TIMEOUT)
                return
            except AmiActionError as exc:
                if "in progress" not in exc.message.lower() or loop.time() > deadline:
                    raise ReloadError(f"Asterisk refused the reload: {exc.message}") from None
            except AmiError as exc:
                raise ReloadError(f"no reload: {exc}") from None
            await asyncio.sleep(BUSY_RETRY)
