"""A loopback TCP proxy between the service and Asterisk's AMI that counts the actions sent.

Client→server bytes are split into lines and every ``Action: <name>`` line is counted by name;
bytes are forwarded unchanged in both directions. It runs on its own asyncio loop (``LoopThread``)
so the synchronous benchmark can read the counters at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 256 * 1024


class LoopThread:
    """An asyncio loop in a daemon thread; ``run(coro)`` waits for a result from another thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="bench-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


class AmiCountingProxy:
    """Listens on 127.0.0.1:<port>, forwards to 127.0.0.1:<target_port>, counts actions."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, count=True),
                self._pump(up_reader, writer, count=False),
            )
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool
    ) -> None:
        pending = b""
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                if count:
                    *lines, pending = (pending + data).split(b"\r\n")
                    self._count(lines)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    def _count(self, lines: list[bytes]) -> None:
        names = [
            line.partition(b":")[2].strip().decode("utf-8", "replace")
            for line in lines
            if line[:7].lower() == b"action:"
        ]
        if names:
            with self._lock:
                self._counts.update(names)
