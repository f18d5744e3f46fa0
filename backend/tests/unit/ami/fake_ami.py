"""A small fake Asterisk Manager Interface on 127.0.0.1, for faults a real Asterisk can't produce.

It mimics what matters from Asterisk 22: the banner line, ``Key: Value`` lines with CRLF, an empty
line after each message, Login (``Authentication accepted`` then ``Event: FullyBooted``; a bad
secret gets ``Authentication failed`` and the connection is closed after ``auth_fail_close_delay``),
Ping/Pong, and list replies (``EventList: start`` … items with the ActionID … ``…Complete``).

Knobs: ``ping_reply`` ("pong", "none", "wrong"), ``login_reply`` ("normal", "silent"),
``chunk_size``/``chunk_delay`` (write in small pieces), ``handlers`` (action name in lower case ->
coroutine taking the connection and the parsed action).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Literal

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
Handler = Callable[["FakeConnection", dict[str, str]], Awaitable[None]]
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def encode(headers: Headers) -> bytes:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return "".join(f"{key}: {value}\r\n" for key, value in pairs).encode() + b"\r\n"


def parse(data: bytes) -> dict[str, str]:
    action: dict[str, str] = {}
    for line in data.decode().split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            action[key] = value
    return action


class FakeConnection:
    def __init__(
        self, server: FakeAmi, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.logged_in = False

    async def send_raw(self, data: bytes) -> None:
        size = self.server.chunk_size
        if size is None:
            self.writer.write(data)
            await self.writer.drain()
            return
        for start in range(0, len(data), size):
            self.writer.write(data[start : start + size])
            await self.writer.drain()
            await asyncio.sleep(self.server.chunk_delay)

    async def send(self, headers: Headers) -> None:
        await self.send_raw(encode(headers))

    async def reply(self, action: dict[str, str], headers: Headers) -> None:
        """A Response carrying the action's ActionID."""
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        pairs.insert(1, ("ActionID", action.get("ActionID", "")))
        await self.send(pairs)

    async def send_list(
        self, action: dict[str, str], event: str, items: list[dict[str, str]]
    ) -> None:
        action_id = action.get("ActionID", "")
        start = [("Response", "Success"), ("ActionID", action_id), ("EventList", "start")]
        await self.send([*start, ("Message", f"A listing of {event} follows")])
        for item in items:
            await self.send([("Event", event), ("ActionID", action_id), *item.items()])
        await self.send(
            [
                ("Event", f"{event}Complete"),
                ("ActionID", action_id),
                ("EventList", "Complete"),
                ("ListItems", str(len(items))),
            ]
        )

    def close(self) -> None:
        self.writer.close()


class FakeAmi:
    def __init__(self, *, username: str = "ispbx", secret: str = "s3cret", port: int = 0) -> None:
        self.username = username
        self.secret = secret
        self.port = port
        self.ping_reply: Literal["pong", "none", "wrong"] = "pong"
        self.login_reply: Literal["normal", "silent"] = "normal"
        self.auth_fail_close_delay = 1.0
        self.chunk_size: int | None = None
        self.chunk_delay = 0.0
        self.endpoints: list[dict[str, str]] = []
        self.handlers: dict[str, Handler] = {}
        self.actions: list[dict[str, str]] = []
        self.raw = bytearray()
        self.connections_total = 0
        self.logins_ok = 0
        self.logins_failed = 0
        self.connections: set[FakeConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> FakeAmi:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def drop_all(self) -> None:
        for conn in list(self.connections):
            conn.close()

    async def send_event(self, headers: Headers) -> None:
        for conn in list(self.connections):
            if conn.logged_in:
                await conn.send(headers)

    def names(self) -> list[str]:
        return [action.get("Action", "") for action in self.actions]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = FakeConnection(self, reader, writer)
        self.connections.add(conn)
        self.connections_total += 1
        try:
            await conn.send_raw(BANNER)
            while True:
                data = await reader.readuntil(b"\r\n\r\n")
                self.raw += data
                action = parse(data)
                self.actions.append(action)
                await self._handle(conn, action)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self.connections.discard(conn)
            conn.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def _handle(self, conn: FakeConnection, action: dict[str, str]) -> None:
        name = action.get("Action", "").lower()
        handler = self.handlers.get(name) or getattr(self, f"_action_{name}", None)
        if handler is not None:
            await handler(conn, action)
            return
        message = f"Invalid/unknown command: {action.get('Action')}."
        await conn.reply(action, {"Response": "Error", "Message": message})

    async def _action_login(self, conn: FakeConnection, action: dict[str, str]) -> None:
        if self.login_reply == "silent":
            return
        good = action.get("Username") == self.username and action.get("Secret") == self.secret
        if not good:
            self.logins_failed += 1
            await conn.reply(action, {"Response": "Error", "Message": "Authentication failed"})
            await asyncio.sleep(self.auth_fail_close_delay)
            conn.close()
            return
        self.logins_ok += 1
        conn.logged_in = True
        await conn.reply(action, {"Response": "Success", "Message": "Authentication accepted"})
        await conn.send(
            {"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}
        )

    async def _action_ping(self, conn: FakeConnection, action: dict[str, str]) -> None:
        if self.ping_reply == "none":
            return
        if self.ping_reply == "wrong":
            await conn.reply(action, {"Response": "Success"})
            return
        await conn.reply(
            action, {"Response": "Success", "Ping": "Pong", "Timestamp": "1700000000.000000"}
        )

    async def _action_pjsipshowendpoints(
        self, conn: FakeConnection, action: dict[str, str]
    ) -> None:
        if not self.endpoints:
            await conn.reply(action, {"Response": "Error", "Message": "No endpoints found"})
            return
        await conn.send_list(action, "EndpointList", self.endpoints)


async def wait_until(predicate: Callable[[], bool], limit: float = 2.0) -> float:
    """Poll ``predicate`` until true; return the seconds waited. Fails the test on timeout."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not predicate():
        if loop.time() - started > limit:
            raise AssertionError(f"condition not met within {limit} s")
        await asyncio.sleep(0.005)
    return loop.time() - started
