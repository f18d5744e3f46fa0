"""The history suites on a real PostgreSQL server (see tests/integration/postgres.py).

Under CI=true a server that cannot be started fails the run with its reason; elsewhere these
tests are skipped with it. One server per session, one fresh database per test; the outage test
gets a server of its own to stop.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.integration.postgres import PostgresServer, PostgresUnavailable, start_server
from tests.unit.history.fixtures import database

__all__ = ["database"]
_names = itertools.count()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def running_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """For fixtures: ``yield from running_postgres(tmp_path_factory)``."""
    try:
        server = start_server(tmp_path_factory.mktemp("pg"))
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
        return
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    yield from running_postgres(tmp_path_factory)


@pytest.fixture
def postgres_database(postgres: PostgresServer) -> Iterator[str]:
    name = f"history_{os.getpid()}_{next(_names)}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


class _ServerOutage:
    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    def begin(self) -> None:
        self.server.stop()

    def end(self) -> None:
        if not self.server.running():
            self.server.start()


@pytest.fixture
def private_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A server of the test's own, for tests that stop it."""
    yield from running_postgres(tmp_path_factory)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """The test's database: on the shared server, or on its own when the test has an outage."""
    if "outage" in request.fixturenames:
        server: PostgresServer = request.getfixturevalue("private_postgres")
        return server.create_database("history")
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def outage(private_postgres: PostgresServer) -> Iterator[_ServerOutage]:
    down = _ServerOutage(private_postgres)
    yield down
    if not private_postgres.running():
        private_postgres.start()
