"""The HTTP edge's bounds (ispbx.edge), on uvicorn's own protocol with a recording transport."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from ispbx import edge
from ispbx.edge import EdgeLimits, GuardedProtocol, WaitingConnection, guarded_protocol

OK_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Transport(asyncio.Transport):
    """Records what the protocol writes and whether it closed; ``feed`` is the client sending."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.eof = False
        self.protocol: asyncio.BaseProtocol | None = None

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def feed(self, data: bytes) -> None:
        assert isinstance(self.protocol, asyncio.Protocol)
        self.protocol.data_received(data)

    def lost(self) -> None:
        assert self.protocol is not None
        self.protocol.connection_lost(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def write_eof(self) -> None:
        self.eof = True

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    @property
    def status(self) -> int | None:
        return int(self.written.split()[1]) if self.written.startswith(b"HTTP/1.1 ") else None


class App:
    """Answers 200; ``hold`` keeps each request busy until released."""

    def __init__(self) -> None:
        self.hold = False
        self.release = asyncio.Event()
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        if self.hold:
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


Connect = Callable[[], Transport]


@pytest.fixture(autouse=True)
def short_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge, "LINGER", 0.02)


def make_server(app: App, **limits: Any) -> Connect:
    config = Config(app=app, lifespan="off", log_config=None, access_log=False)
    protocol_class = guarded_protocol(EdgeLimits(**limits))
    state = ServerState()

    def connect() -> Transport:
        protocol = protocol_class(config, state, {}, asyncio.get_running_loop())
        transport = Transport()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        return transport

    return connect


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_normal_request_is_served() -> None:
    connect = make_server(App())
    transport = connect()
    transport.feed(OK_REQUEST)
    await settle()
    assert transport.status == 200
    assert not transport.closed  # keep-alive


async def test_a_head_over_the_limit_gets_431_and_the_connection_closes() -> None:
    app = App()
    connect = make_server(app, max_header_bytes=1024)
    transport = connect()
    transport.feed(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 600)
    assert transport.written == b""
    transport.feed(b"a" * 600)  # never finished, and over 1024 bytes in all
    assert transport.status == 431
    assert transport.eof
    transport.feed(b"a" * 10_000)  # read and dropped while lingering
    await asyncio.sleep(0.05)
    assert transport.closed
    assert app.bodies == []


async def test_a_head_of_exactly_the_limit_is_served() -> None:
    connect = make_server(App(), max_header_bytes=1024)
    transport = connect()
    head = b"GET / HTTP/1.1\r\nX-Big: "
    transport.feed(head + b"a" * (1024 - len(head) - 4) + b"\r\n\r\n")
    await settle()
    assert transport.status == 200


async def test_a_body_in_the_same_read_as_the_head_is_not_counted_as_head() -> None:
    app = App()
    connect = make_server(app, max_header_bytes=1024)
    transport = connect()
    body = b"x" * 20_000
    transport.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    await settle()
    assert transport.status == 200
    assert app.bodies == [body]


async def test_a_slow_head_gets_408_and_an_idle_connection_is_closed_silently() -> None:
    connect = make_server(App(), header_timeout=0.05)
    slow_transport = connect()
    idle_transport = connect()
    slow_transport.feed(b"GET / HTTP/1.1\r\nX-Slow: a")
    await asyncio.sleep(0.1)
    assert slow_transport.status == 408
    assert idle_transport.closed
    assert idle_transport.written == b""


async def test_the_header_timer_stops_once_the_head_is_in() -> None:
    app = App()
    app.hold = True  # e.g. an event stream: busy far longer than the header timeout
    connect = make_server(app, header_timeout=0.05)
    transport = connect()
    transport.feed(OK_REQUEST)
    await asyncio.sleep(0.1)
    assert not transport.closed
    app.release.set()
    await settle()
    assert transport.status == 200


async def test_over_the_cap_the_oldest_idle_connection_makes_room() -> None:
    connect = make_server(App(), max_connections=2)
    first = connect()
    second = connect()
    third = connect()
    assert first.closed and first.written == b""  # evicted, oldest first
    assert not second.closed and not third.closed
    third.feed(OK_REQUEST)
    await settle()
    assert third.status == 200


async def test_when_every_connection_is_busy_the_next_gets_503() -> None:
    app = App()
    app.hold = True
    connect = make_server(app, max_connections=2)
    for _ in range(2):
        connect().feed(OK_REQUEST)
    await settle()
    refused = connect()
    assert refused.status == 503
    assert b"retry-after: 1" in refused.written
    await asyncio.sleep(0.05)
    assert refused.closed
    app.release.set()
    await settle()
    later = connect()  # the two are idle again: one is evicted for the newcomer
    assert not later.closed


async def test_a_closed_connection_frees_its_slot() -> None:
    connect = make_server(App(), max_connections=2)
    first = connect()
    second = connect()
    first.lost()
    third = connect()
    assert not second.closed and not third.closed


def test_the_cap_is_lowered_to_what_the_open_file_limit_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_args: object) -> None:
        raise ValueError("not allowed")

    monkeypatch.setattr(resource, "getrlimit", lambda _kind: (512, 512))
    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert EdgeLimits(max_connections=1000).fitted_to_fd_limit().max_connections == 512 - 64
    assert EdgeLimits(max_connections=100).fitted_to_fd_limit().max_connections == 100


def test_the_soft_open_file_limit_is_raised_when_the_hard_one_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raised: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _kind: (1024, 65536))
    monkeypatch.setattr(resource, "setrlimit", lambda _kind, limits: raised.append(limits))
    assert EdgeLimits(max_connections=2000).fitted_to_fd_limit().max_connections == 2000
    assert raised == [(2064, 65536)]


def test_defaults_are_the_documented_ones() -> None:
    limits = EdgeLimits()
    assert limits.max_header_bytes == 16 * 1024
    assert limits.header_timeout <= 10.0
    assert limits.keepalive_timeout == 5.0
    assert limits.max_connections == 1000


def test_the_settings_defaults_are_the_edge_defaults() -> None:
    from ispbx.settings import load_settings

    assert EdgeLimits.from_settings(load_settings({})) == EdgeLimits()


async def test_uvicorns_protocol_is_built_only_once_a_byte_arrives() -> None:
    connect = make_server(App(), header_timeout=0.2)
    transport = connect()
    assert isinstance(transport.protocol, WaitingConnection)
    await asyncio.sleep(0.1)
    transport.feed(b"GET / HTTP/1.1\r\nX-Slow: a")
    assert isinstance(transport.protocol, GuardedProtocol)
    await asyncio.sleep(0.15)  # the head is due 0.2 s after the connection opened, not the byte
    assert transport.status == 408


async def test_a_waiting_connection_that_gets_a_request_is_served() -> None:
    connect = make_server(App(), max_connections=3)
    transports = [connect() for _ in range(3)]
    transports[1].feed(OK_REQUEST)
    await settle()
    assert transports[1].status == 200
    newcomer = connect()  # over the cap: the oldest waiting one goes, not the served one
    assert transports[0].closed and not transports[1].closed and not newcomer.closed
