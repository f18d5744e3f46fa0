from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from ispbx.ami import AmiClient

from .fake_ami import FakeAmi


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = await FakeAmi().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(fake: FakeAmi) -> AsyncIterator[AmiClient]:
    ami = AmiClient("127.0.0.1", fake.port, fake.username, fake.secret, action_timeout=2.0)
    await ami.connect()
    try:
        yield ami
    finally:
        await ami.close()


@pytest.fixture
def free_port() -> int:
    """A port with nothing listening on it (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
