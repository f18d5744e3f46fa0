"""The long-lived AMI session: connect, login, keep alive, reconnect with backoff.

One background task (``start()``) loops forever: connect a fresh ``AmiClient``; on failure record
the error in ``state`` and retry after an exponential backoff with jitter (0.2 s, 0.4 s, 0.8 s …,
held at 4 s for the first two minutes so that an outage of up to a minute ends in a session back
within 5 s, then doubling on to the 30 s cap; reset after each successful login). While connected
it pings every ``ping_interval`` seconds and treats a missing or wrong Pong as a dead peer, and
it runs the async login hooks (awaited, in registration order, in a task of their own so that a
hook never delays noticing a dropped connection).

A login hook that raises is logged and the session stays up: the connection itself is fine, and
dropping it would make a hook bug turn into a reconnect storm.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from ispbx.ami.client import (
    AmiAuthError,
    AmiClient,
    AmiDisconnected,
    AmiError,
    AmiMessage,
    AmiTimeout,
)

logger = logging.getLogger(__name__)

LoginHook = Callable[[AmiClient], Awaitable[None]]
HELPER_STOP_TIMEOUT = 1.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class AmiState:
    connected: bool
    host: str
    port: int
    last_error: str | None  # why the session is down; None while connected
    since: datetime  # last up/down change, tz-aware UTC


class Backoff:
    """Nominal delays initial, 2·initial, 4·initial … capped at ``cap``.

    For the first ``fast_for`` seconds of nominal waiting a step is at most ``fast_cap``: Asterisk
    restarts in seconds, and a session should be back soon after it does."""

    def __init__(
        self, initial: float, cap: float, *, fast_cap: float = 4.0, fast_for: float = 120.0
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.fast_cap = fast_cap
        self.fast_for = fast_for
        self._next = initial
        self._waited = 0.0

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(delay * 2, self.cap)
        if self._waited < self.fast_for:
            delay = min(delay, self.fast_cap)
        self._waited += delay
        return delay

    def reset(self) -> None:
        self._next = self.initial
        self._waited = 0.0


def jittered(delay: float, rand: Callable[[], float] = random.random) -> float:
    """A random delay between half and all of ``delay`` (never longer than the nominal step)."""
    return delay * (0.5 + 0.5 * rand())


def describe_connect_error(exc: BaseException, address: str) -> str:
    if isinstance(exc, AmiAuthError):
        return "authentication failed"
    if isinstance(exc, AmiTimeout):
        return f"timed out connecting ({address})"
    if isinstance(exc, AmiDisconnected):
        return f"connection closed during login ({address})"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused ({address})"
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
        return f"{text.lower()} ({address})"
    return f"{exc} ({address})"


def _now() -> datetime:
    return datetime.now(UTC)


class AmiSession:
    """Keeps one logged-in ``AmiClient`` up for the life of the service."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        ping_interval: float = 10.0,
        backoff_initial: float = 0.2,
        backoff_cap: float = 30.0,
        connect_timeout: float = 5.0,
        action_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._secret = secret
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        self.action_timeout = action_timeout
        self._backoff = Backoff(backoff_initial, backoff_cap)
        self._state = AmiState(False, host, port, None, _now())
        self._client: AmiClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._login_hooks: list[LoginHook] = []
        self._event_listeners: list[Callable[[AmiMessage], None]] = []
        self._state_listeners: list[Callable[[AmiState], None]] = []
        self._logged_retry: tuple[str, float] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def state(self) -> AmiState:
        return self._state

    @property
    def client(self) -> AmiClient | None:
        """The current logged-in client, or None."""
        client = self._client
        return client if client is not None and client.connected else None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the background loop (needs a running event loop); never waits for AMI."""
        if self._task is not None and not self._task.done():
            return
        self._backoff.reset()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ami-session")

    async def stop(self) -> None:
        """Cancel the loop and close the connection. Idempotent."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        if self._state.connected:
            self._set_state(connected=False, last_error="session stopped")

    # -- listeners ----------------------------------------------------------------------------

    def add_login_hook(self, hook: LoginHook) -> Callable[[], None]:
        """Await ``hook(client)`` after each successful login. Errors are logged, not fatal."""
        return _subscribe(self._login_hooks, hook)

    def add_event_listener(self, cb: Callable[[AmiMessage], None]) -> Callable[[], None]:
        """Call ``cb`` with every AMI event, across reconnects."""
        return _subscribe(self._event_listeners, cb)

    def add_state_listener(self, cb: Callable[[AmiState], None]) -> Callable[[], None]:
        """Call ``cb`` with the new state on every up/down change."""
        return _subscribe(self._state_listeners, cb)

    # -- actions on the current client ----------------------------------------------------------

    async def action(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> AmiMessage:
        return await self._current().action(action, timeout=timeout)

    async def list_action(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[AmiMessage]:
        return await self._current().list_action(action, timeout=timeout)

    def _current(self) -> AmiClient:
        client = self.client
        if client is None:
            raise AmiDisconnected(f"AMI at {self.address} is not connected")
        return client

    # -- the loop -------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._attempt()
            except Exception:  # a bug must not end the session for good
                logger.exception("unexpected error in the AMI session loop")
            delay = self._backoff.next_delay()
            self._log_retry(delay)
            await asyncio.sleep(jittered(delay))

    async def _attempt(self) -> None:
        client = AmiClient(
            self.host,
            self.port,
            self._username,
            self._secret,
            connect_timeout=self.connect_timeout,
            action_timeout=self.action_timeout,
        )
        client.add_event_listener(self._dispatch_event)
        try:
            await client.connect()
        except (OSError, AmiError) as exc:
            self._set_state(connected=False, last_error=describe_connect_error(exc, self.address))
            return
        self._backoff.reset()
        self._logged_retry = None
        await self._serve(client)

    async def _serve(self, client: AmiClient) -> None:
        self._client = client
        self._set_state(connected=True, last_error=None)
        logger.info("AMI connected to %s", self.address)
        helpers = [
            asyncio.create_task(self._keepalive(client), name="ami-keepalive"),
            asyncio.create_task(self._run_login_hooks(client), name="ami-login-hooks"),
        ]
        try:
            await client.wait_closed()
        finally:
            self._client = None
            await _cancel(helpers)
            await client.close()
        reason = client.close_reason or "connection lost"
        logger.warning("AMI connection to %s lost: %s", self.address, reason)
        self._set_state(connected=False, last_error=reason)

    async def _keepalive(self, client: AmiClient) -> None:
        while client.connected:
            await asyncio.sleep(self.ping_interval)
            try:
                await client.ping(timeout=self.ping_interval)
            except AmiDisconnected:
                return
            except AmiError as exc:
                client.abort(f"keepalive failed: {exc}")
                return

    async def _run_login_hooks(self, client: AmiClient) -> None:
        for hook in list(self._login_hooks):
            try:
                await hook(client)
            except AmiError as exc:
                logger.warning("AMI login hook %r failed: %s", hook, exc)
            except Exception:
                logger.exception("AMI login hook %r failed", hook)

    def _log_retry(self, delay: float) -> None:
        """One warning per backoff step (and per new error), never a traceback."""
        error = self._state.last_error or "disconnected"
        if self._logged_retry == (error, delay):
            logger.debug("AMI %s still down (%s)", self.address, error)
            return
        self._logged_retry = (error, delay)
        logger.warning("AMI %s: %s; retrying within %.1f s", self.address, error, delay)

    # -- state & events -------------------------------------------------------------------------

    def _set_state(self, *, connected: bool, last_error: str | None) -> None:
        changed = connected != self._state.connected
        since = _now() if changed else self._state.since
        self._state = AmiState(connected, self.host, self.port, last_error, since)
        if changed:
            _call_each(self._state_listeners, self._state, "AMI state listener")

    def _dispatch_event(self, event: AmiMessage) -> None:
        _call_each(self._event_listeners, event, "AMI event listener")


def _subscribe(items: list[_T], item: _T) -> Callable[[], None]:
    items.append(item)

    def unsubscribe() -> None:
        if item in items:
            items.remove(item)

    return unsubscribe


def _call_each(callbacks: list[Callable[[_T], None]], value: _T, what: str) -> None:
    for callback in list(callbacks):
        try:
            callback(value)
        except Exception:
            logger.exception("%s %r failed", what, callback)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=HELPER_STOP_TIMEOUT)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            logger.error("AMI helper task %s failed", task.get_name(), exc_info=task.exception())
