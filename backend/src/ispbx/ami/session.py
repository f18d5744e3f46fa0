"""The long-lived AMI session: connect, login, keep alive, reconnect with backoff.

One background task (``start()``) loops forever: connect a fresh ``AmiClient``; on failure record
the error in ``state`` and retry after an exponential backoff with jitter (0.2 s, 0.4 s, 0.8 s …,
held at 4 s for the first two minutes so that an outage of up to a minute ends in a session back
within 5 s, then doubling on to the 30 s cap; reset after each successful login). While connected
it keeps the connection alive (below) and runs the async login hooks (awaited, in registration
order, in a task of their own so that a hook never delays noticing a dropped connection).

Keepalive: *any* bytes from Asterisk count as a sign of life, not only a Pong. A hung Asterisk
(``kill -STOP``, a deadlock) keeps its TCP connection open and simply goes quiet, while a slow but
alive one is never quiet for long: a big list (PJSIPShowContacts at 10,000 endpoints takes ~1.5 s)
streams its items as it goes, and events flow between actions. So the session sends a Ping once
nothing has arrived for ``ping_interval`` (1 s) and drops the connection as "not answering" once
nothing at all has arrived for ``silence_timeout`` (3 s): a Ping queued behind a long list is
answered late, but the list's own items keep the connection counted alive meanwhile. A hung
Asterisk is noticed within ~3 s (then ``/health`` says so and the envelope goes stale), a reply
other than ``Ping: Pong`` drops the connection at once. :attr:`AmiSession.answering` is false as
soon as a Ping has waited ``ping_interval / 2`` without any traffic, so a request need not wait
for an action that a quiet Asterisk will not answer.

A login hook that raises is logged and the session stays up: the connection itself is fine, and
dropping it would make a hook bug turn into a reconnect storm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ispbx.ami.client import (
    AmiAuthError,
    AmiClient,
    AmiDisconnected,
    AmiError,
    AmiMessage,
    AmiTimeout,
)
from ispbx.ami.stats import AmiStats
from ispbx.ami.target import AmiTarget
from ispbx.backoff import Backoff, jittered
from ispbx.listeners import AsyncHooks, Listeners
from ispbx.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

HELPER_STOP_TIMEOUT = 1.0


@dataclass(frozen=True)
class AmiState:
    connected: bool
    host: str
    port: int
    last_error: str | None  # why the session is down; None while connected
    since: datetime  # last up/down change, tz-aware UTC


def describe_connect_error(exc: BaseException, address: str) -> str:
    if isinstance(exc, AmiAuthError):
        return "authentication failed"
    if isinstance(exc, AmiTimeout):
        what = (
            "not answering: no reply to the login" if exc.answered_tcp else "timed out connecting"
        )
        return f"{what} ({address})"
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
    """Keeps one logged-in ``AmiClient`` up for the life of the service.

    Subscribe with ``logins.add(hook)`` (awaited after each login), ``events.add(cb)`` (every AMI
    event, across reconnects) and ``states.add(cb)`` (every up/down change)."""

    def __init__(self, target: AmiTarget) -> None:
        self.target = target
        self._backoff = Backoff(target.backoff_initial, target.backoff_cap)
        self._state = AmiState(False, target.host, target.port, None, _now())
        self._client: AmiClient | None = None
        self._task: asyncio.Task[None] | None = None
        self.logins: AsyncHooks[AmiClient] = AsyncHooks("AMI login")
        self.events: Listeners[AmiMessage] = Listeners("AMI event")
        self.states: Listeners[AmiState] = Listeners("AMI state")
        self.stats = AmiStats()  # counters across reconnects, for /metrics
        self.events.add(self.stats.event_received)
        self.states.add(self.stats.state_changed)
        self._logged_retry: tuple[str, float] | None = None

    @property
    def address(self) -> str:
        return self.target.address

    @property
    def state(self) -> AmiState:
        return self._state

    @property
    def answering(self) -> bool:
        """Connected, and Asterisk has not been quiet for longer than a Ping's round trip should
        take: an action sent now is likely to be answered soon."""
        client = self.client
        if client is None:
            return False
        return client.silent_for < self.target.ping_interval * 1.5

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
        await cancel_and_wait(task)
        if self._state.connected:
            self._set_state(connected=False, last_error="session stopped")

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
        target = self.target
        client = AmiClient(
            target.host,
            target.port,
            target.username,
            target.secret,
            connect_timeout=target.connect_timeout,
            action_timeout=target.action_timeout,
            on_action=self.stats.action_sent,
        )
        client.add_event_listener(self.events.emit)
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
            asyncio.create_task(self.logins.run(client), name="ami-login-hooks"),
        ]
        try:
            await client.wait_closed()
        finally:
            self._client = None
            await cancel_and_wait(*helpers, timeout=HELPER_STOP_TIMEOUT)
            await client.close()
        reason = client.close_reason or "connection lost"
        logger.warning("AMI connection to %s lost: %s", self.address, reason)
        self._set_state(connected=False, last_error=reason)

    async def _keepalive(self, client: AmiClient) -> None:
        """Ping when Asterisk has been quiet for ``ping_interval``; drop the connection when it
        has been quiet for ``silence_timeout`` (see the module docstring)."""
        interval, limit = self.target.ping_interval, self.target.silence_timeout
        ping: asyncio.Task[None] | None = None
        try:
            while client.connected:
                silent = client.silent_for
                if silent >= limit:
                    client.abort(f"not answering: nothing received for {silent:.1f} s")
                    return
                if silent >= interval and (ping is None or ping.done()):
                    ping = asyncio.create_task(self._ping(client, limit), name="ami-ping")
                wait = interval - silent if silent < interval else limit - silent
                await asyncio.sleep(max(wait, 0.01))
        finally:
            await cancel_and_wait(ping, timeout=HELPER_STOP_TIMEOUT)

    @staticmethod
    async def _ping(client: AmiClient, timeout: float) -> None:  # noqa: ASYNC109
        try:
            await client.ping(timeout=timeout)
        except (AmiDisconnected, AmiTimeout):
            return  # gone, or quiet: the silence check decides
        except AmiError as exc:
            client.abort(f"keepalive failed: {exc}")

    def _log_retry(self, delay: float) -> None:
        """One warning per backoff step (and per new error), never a traceback."""
        error = self._state.last_error or "disconnected"
        if self._logged_retry == (error, delay):
            logger.debug("AMI %s still down (%s)", self.address, error)
            return
        self._logged_retry = (error, delay)
        logger.warning("AMI %s: %s; retrying within %.1f s", self.address, error, delay)

    # -- state ----------------------------------------------------------------------------------

    def _set_state(self, *, connected: bool, last_error: str | None) -> None:
        changed = connected != self._state.connected
        since = _now() if changed else self._state.since
        self._state = AmiState(connected, self.target.host, self.target.port, last_error, since)
        if changed:
            self.states.emit(self._state)
