"""The HTTP edge: what a client can hold before any token is checked.

uvicorn's httptools protocol has no limit of its own on the request head (httptools accumulates a
header value in memory however long it grows), never closes a connection that sends nothing or
sends a byte a second, and accepts connections until the process runs out of file descriptors.
:class:`GuardedProtocol` is that protocol with four bounds, all counted per connection in the
protocol itself (no ASGI middleware: nothing is added to the path of a request that is served):

* **head size**: the request line and headers may take at most ``max_header_bytes``; more is
  answered ``431`` and the connection closed, before the bytes reach the parser;
* **head time**: they must arrive within ``header_timeout`` of the connection opening, or of the
  first byte of a keep-alive request (``408``, or a plain close when nothing was sent);
* **idle keep-alive**: uvicorn's own ``timeout_keep_alive`` between requests;
* **connections**: at most ``max_connections`` at once. One more evicts the connection that has
  been idle (or still sending its head) the longest, so a flood of idle sockets never locks a real
  client out; only when every connection is busy with a request (event streams included) is the
  newcomer answered ``503``.

A new connection starts as a :class:`WaitingConnection`, a few attributes and a timer: uvicorn's
protocol (an HTTP parser, flow control, addresses …) is built only once the client sends its first
byte. A flood of connections that send nothing is then cheap to accept, count and evict, so the
service keeps accepting as fast as the flood arrives and a real client is not left waiting in a
full accept queue (:data:`BACKLOG` is raised for bursts as well).

A refused connection gets its answer, then the service reads and drops what the client still
sends for up to :data:`LINGER` seconds (:data:`LINGER_BYTES` at most) before closing, so the client
can read the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from ispbx.settings import Settings

log = logging.getLogger(__name__)
LINGER = 1.0
LINGER_BYTES = 64 * 1024
WARN_EVERY = 10.0
FD_RESERVE = 64  # descriptors kept for everything but client connections (AMI, files, epoll …)
BACKLOG = 4096  # accept queue for bursts (uvicorn: 2048; the kernel caps it at net.core.somaxconn)
TOO_MANY = "Service Unavailable: too many connections, retry shortly"


@dataclass(frozen=True)
class EdgeLimits:
    """The bounds of the HTTP edge (settings ``ISPBX_HTTP_*``)."""

    max_header_bytes: int = 16 * 1024
    header_timeout: float = 10.0
    keepalive_timeout: int = 5
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            max_header_bytes=settings.http_max_header_bytes,
            header_timeout=settings.http_header_timeout,
            keepalive_timeout=settings.http_keepalive_timeout,
            max_connections=settings.http_max_connections,
        )

    def fitted_to_fd_limit(self) -> EdgeLimits:
        """These limits with ``max_connections`` lowered to what RLIMIT_NOFILE allows (after
        trying to raise the soft limit to the hard one), so the cap, not the kernel, says no."""
        wanted = self.max_connections + FD_RESERVE
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
        if soft == resource.RLIM_INFINITY or soft >= wanted:
            return self
        fitted = max(1, soft - FD_RESERVE)
        log.warning(
            "ISPBX_HTTP_MAX_CONNECTIONS=%d does not fit the open-file limit (%d): using %d",
            self.max_connections,
            soft,
            fitted,
        )
        return replace(self, max_connections=fitted)


class Member(Protocol):
    """A counted connection: a waiting one or a guarded protocol."""

    def evict(self) -> None: ...


class Connections:
    """Every connection of one server: how many are open, and the evictable ones (idle between
    requests or still sending their head), oldest first."""

    def __init__(self, limits: EdgeLimits) -> None:
        self.limits = limits
        self._open: set[Member] = set()
        self._evictable: OrderedDict[Member, None] = OrderedDict()
        self.evicted = 0
        self.refused = 0
        self._warned_at = -WARN_EVERY

    def warn_refused(self, now: float) -> None:
        """One warning per WARN_EVERY seconds while connections are refused (not one per socket)."""
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning(
                "HTTP: %d connections open and busy: refusing new ones with 503 (%d so far)",
                self.limits.max_connections,
                self.refused,
            )

    @property
    def count(self) -> int:
        return len(self._open)

    def admit(self, protocol: Member) -> bool:
        """Count a new connection; False when every other one is busy and the cap is reached."""
        self._open.add(protocol)
        if len(self._open) <= self.limits.max_connections:
            return True
        if not self._evictable:
            self._open.discard(protocol)
            self.refused += 1
            return False
        victim, _ = self._evictable.popitem(last=False)
        self._open.discard(victim)
        self.evicted += 1
        victim.evict()
        return True

    def evictable(self, protocol: Member) -> None:
        if protocol in self._open:
            self._evictable[protocol] = None
            self._evictable.move_to_end(protocol)

    def busy(self, protocol: Member) -> None:
        self._evictable.pop(protocol, None)

    def gone(self, protocol: Member) -> None:
        self._open.discard(protocol)
        self._evictable.pop(protocol, None)

    def replace(self, old: Member, new: Member) -> None:
        """``new`` carries on the connection of ``old`` (counted once, not admitted again)."""
        if old in self._open:
            self.gone(old)
            self._open.add(new)


def answer(transport: asyncio.Transport, status: int, reason: str) -> None:
    """Write a complete ``status`` response (text/plain ``reason``) and half-close."""
    body = reason.encode()
    transport.write(
        b"".join(
            [
                STATUS_LINE[status],
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n",
                b"retry-after: 1\r\n" if status == 503 else b"",
                b"\r\n",
                body,
            ]
        )
    )
    if transport.can_write_eof():
        transport.write_eof()


def close(transport: asyncio.BaseTransport | None) -> None:
    if transport is not None and not transport.is_closing():
        transport.close()


class WaitingConnection(asyncio.Protocol):
    """A connection that has sent nothing yet: counted, timed and evictable, nothing more. Its
    first bytes hand it to a :class:`GuardedProtocol` (see the module docstring).

    Built per server by :func:`guarded_protocol`, which sets ``edge`` and ``protocol_class``; it
    takes uvicorn's protocol arguments to pass them on."""

    edge: ClassVar[Connections]
    protocol_class: ClassVar[type[GuardedProtocol]]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._args = (config, server_state, app_state)
        self._loop = _loop or asyncio.get_event_loop()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._refused = False
        self._lingered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio subclass
        self._transport = transport
        if not self.edge.admit(self):
            self.edge.warn_refused(self._loop.time())
            self._refused = True
            answer(transport, 503, TOO_MANY)
            self._loop.call_later(LINGER, close, transport)
            return
        self._deadline = self._loop.time() + self.edge.limits.header_timeout
        self._timer = self._loop.call_at(self._deadline, close, transport)  # idle: no answer
        self.edge.evictable(self)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        if self._refused:
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                close(transport)
            return
        self._stop_timer()
        protocol = self.protocol_class(*self._args, self._loop)
        transport.set_protocol(protocol)
        protocol.take_over(transport, self, self._deadline)
        protocol.data_received(data)

    def eof_received(self) -> bool | None:
        return None  # the client is done before it began: close

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        self.edge.gone(self)

    def evict(self) -> None:
        self._stop_timer()
        self._refused = True
        close(self._transport)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's HttpToolsProtocol with the edge's bounds; see the module docstring.

    Built per server by :func:`guarded_protocol`, which sets ``edge``."""

    edge: ClassVar[Connections]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = False
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._lingered = 0

    # -- connection ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.edge.admit(self):
            self.edge.warn_refused(self.loop.time())
            self._refuse(503, TOO_MANY)
            return
        self._open_head()

    def take_over(
        self, transport: asyncio.Transport, waiting: WaitingConnection, deadline: float
    ) -> None:
        """Carry on a connection that has just sent its first bytes; its head is due by
        ``deadline`` (header_timeout after it was opened)."""
        super().connection_made(transport)
        self.edge.replace(waiting, self)
        self._open_head(deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        self.edge.gone(self)
        super().connection_lost(exc)

    def evict(self) -> None:
        """Another connection needs the slot: close this idle one (no answer is owed)."""
        self._stop_head_timer()
        self._refused = True
        if not self.transport.is_closing():
            self.transport.close()

    # -- the request head ------------------------------------------------------------------------

    def _between_requests(self) -> bool:
        return not self.pipeline and (self.cycle is None or self.cycle.response_complete)

    def _open_head(self, deadline: float | None = None) -> None:
        """A request head may start now: count its bytes and time it."""
        self._in_head = True
        self._head_bytes = 0
        self._stop_head_timer()
        if deadline is None:
            deadline = self.loop.time() + self.edge.limits.header_timeout
        self._head_timer = self.loop.call_at(deadline, self._head_late)
        if self._between_requests():
            self.edge.evictable(self)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # an idle connection: nothing to answer
            return
        self._refuse(408, "Request Timeout: the request head took too long")

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._linger_read(data)
            return
        if not self._in_head and self._between_requests():
            self._open_head()  # the first bytes of a keep-alive request
        limit = self.edge.limits.max_header_bytes
        while data and self._in_head:
            room = limit - self._head_bytes
            if room <= 0:
                self._refuse(431, "Request Header Fields Too Large")
                return
            if len(data) <= room:
                piece, data = data, b""
            else:
                piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return
        if data:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:
            self._open_head()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        self.edge.busy(self)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._between_requests():
            self.edge.evictable(self)

    # -- refusing --------------------------------------------------------------------------------

    def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` (text/plain ``reason``), then close after a short linger."""
        self._refused = True
        self._in_head = False
        self._stop_head_timer()
        self.edge.busy(self)
        answer(self.transport, status, reason)
        self.loop.call_later(LINGER, close, self.transport)

    def _linger_read(self, data: bytes) -> None:
        self._lingered += len(data)
        if self._lingered > LINGER_BYTES:
            close(self.transport)


def guarded_protocol(limits: EdgeLimits) -> type[WaitingConnection]:
    """The protocol class for ``uvicorn.Config(http=...)``: each connection waits cheaply for
    its first byte, then becomes a guarded uvicorn protocol; all share one count."""
    edge = Connections(limits)
    guarded = type("GuardedHttpToolsProtocol", (GuardedProtocol,), {"edge": edge})
    return type("EdgeConnection", (WaitingConnection,), {"edge": edge, "protocol_class": guarded})
