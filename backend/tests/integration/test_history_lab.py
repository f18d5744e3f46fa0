"""History with the lab Asterisk and a real phone, on SQLite and on PostgreSQL: registrations and
their contact, availability over a known outage, flapping, a restart, and a database that goes
away mid-run (PostgreSQL stopped) while the API keeps answering."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ispbx_lab.lab import Lab, free_port
from ispbx_lab.sipphone import USER_AGENT, register_blocking, unregister_blocking
from tests.integration.conftest import running_lab
from tests.integration.history.conftest import running_postgres
from tests.integration.postgres import PostgresServer
from tests.support import ADMIN_TOKEN, VIEWER_TOKEN, ServiceProcess, wait_for

pytestmark = pytest.mark.integration
FLAP_SECONDS = 3.0  # ISPBX_FLAP_MINUTES for these tests
OUTAGE_SECONDS = 3.0


@pytest.fixture(scope="module")
def history_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("history")


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    yield from running_postgres(tmp_path_factory)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"lab_{request.node.name.split('[')[0][-30:]}_{time.time_ns()}")


@dataclass
class Phone:
    lab: Lab
    user: str
    port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))

    @property
    def kwargs(self) -> dict[str, Any]:
        return {"registrar": ("127.0.0.1", self.lab.sip_port), "local_port": self.port}

    def register(self) -> None:
        register_blocking(self.user, f"{self.user}pass", expires=300, **self.kwargs)

    def unregister(self) -> None:
        unregister_blocking(self.user, f"{self.user}pass", **self.kwargs)


def start(lab: Lab, tmp_path: Path, url: str, name: str = "service") -> ServiceProcess:
    env = {
        **lab.service_env(),
        "ISPBX_DATABASE_URL": url,
        "ISPBX_FLAP_CHANGES": "4",
        "ISPBX_FLAP_MINUTES": str(FLAP_SECONDS / 60),
    }
    service = ServiceProcess(env, tmp_path / f"{name}.log").start()
    wait_for(lambda: service.get("/health").json()["inventory"]["synced"], 20, "the first sync")
    return service


def history(service: ServiceProcess, extension: str, **params: str) -> list[dict[str, Any]]:
    response = service.get(f"/endpoints/{extension}/history", params=params)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def kinds(service: ServiceProcess, extension: str, only: str = "") -> list[str]:
    """The kinds of the extension's events, newest first (``only``: a kind filter)."""
    params = {"kind": only} if only else {}
    return [e["kind"] for e in history(service, extension, **params)]


REGISTRATION = "registered,unregistered"


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def test_register_and_unregister_are_recorded_with_the_contact_and_survive_a_restart(
    history_lab: Lab, tmp_path: Path, database_url: str
) -> None:
    phone = Phone(history_lab, "101")
    service = start(history_lab, tmp_path, database_url)
    try:
        before = datetime.now(UTC)
        phone.register()
        wait_for(lambda: "registered" in kinds(service, "101"), 5, "registered")
        phone.unregister()
        wait_for(
            lambda: kinds(service, "101", REGISTRATION)[:1] == ["unregistered"], 5, "unregistered"
        )
        after = datetime.now(UTC)
        unregistered, registered = history(service, "101", kind="registered,unregistered")[:2]
        assert (registered["kind"], unregistered["kind"]) == ("registered", "unregistered")
        uri = f"sip:101@127.0.0.1:{phone.port}"
        for event in (registered, unregistered):
            assert event["endpoint"] == "101"
            assert event["data"]["uri"] == uri
            assert event["data"]["user_agent"] == USER_AGENT
            assert before - timedelta(seconds=1) <= parse(event["occurred_at"]) <= after
        assert parse(registered["occurred_at"]) <= parse(unregistered["occurred_at"])
        recorded = history(service, "101")
    finally:
        service.stop()
    again = start(history_lab, tmp_path, database_url, "restarted")
    try:
        kept = history(again, "101", limit="1000")
        assert [e for e in kept if e in recorded] == recorded  # yesterday's history is there
        fleet = again.get("/history", params={"extension": "101", "kind": "registered"}).json()
        assert [e["id"] for e in fleet["events"]][:1] == [registered["id"]]
    finally:
        again.stop()


def test_availability_over_a_known_outage_is_within_a_second(
    history_lab: Lab, tmp_path: Path, database_url: str
) -> None:
    phone = Phone(history_lab, "102")
    service = start(history_lab, tmp_path, database_url)
    try:
        phone.register()
        wait_for(lambda: "registered" in kinds(service, "102"), 5, "registered")
        since = parse(history(service, "102", kind="registered")[0]["occurred_at"])
        time.sleep(1.0)
        phone.unregister()
        time.sleep(OUTAGE_SECONDS)
        phone.register()
        wait_for(
            lambda: kinds(service, "102", REGISTRATION)[:2] == ["registered", "unregistered"],
            5,
            "registered again",
        )
        time.sleep(1.0)
        until = datetime.now(UTC)
        body = service.get(
            "/endpoints/102/availability",
            params={"since": since.isoformat(), "until": until.isoformat()},
        ).json()
        assert abs(body["offline_seconds"] - OUTAGE_SECONDS) < 1.0, body
        assert body["unknown_seconds"] == 0
        assert body["online_seconds"] == pytest.approx(
            (until - since).total_seconds() - body["offline_seconds"], abs=0.01
        )
        assert [p["state"] for p in body["periods"]] == ["online", "offline", "online"]
        csv = service.get(
            "/endpoints/102/availability",
            params={"since": since.isoformat(), "until": until.isoformat(), "format": "csv"},
        )
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0].startswith("pbx,endpoint,")
    finally:
        service.stop()
        phone.unregister()


class EventStream:
    """/events read in a thread; ``events`` holds (kind, data) as they arrive."""

    def __init__(self, service: ServiceProcess) -> None:
        self.events: list[tuple[str, Any]] = []
        self._url = f"{service.base_url}/events?token={ADMIN_TOKEN}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with httpx.stream("GET", self._url, timeout=None) as response:
            kind = ""
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    self.events.append((kind, json.loads(line.removeprefix("data: "))))

    def close(self) -> None:
        self._stop.set()


def test_flapping_is_flagged_after_the_toggles_and_cleared_after_quiet(
    history_lab: Lab, tmp_path: Path
) -> None:
    phone = Phone(history_lab, "103")
    service = start(history_lab, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'flap.db'}")
    stream = EventStream(service)

    def row() -> dict[str, Any]:
        rows = service.get("/endpoints").json()["endpoints"]
        found: dict[str, Any] = next(r for r in rows if r["extension"] == "103")
        return found

    try:
        assert row()["flapping"] is False
        for _ in range(2):  # four changes: registered, unregistered, registered, unregistered
            phone.register()
            time.sleep(0.2)
            phone.unregister()
            time.sleep(0.2)
        wait_for(lambda: row()["flapping"], 3, "103 flapping")
        assert service.get("/endpoints/103").json()["flapping"] is True
        assert ("flapping", {"extension": "103", "flapping": True}) in stream.events
        wait_for(lambda: not row()["flapping"], FLAP_SECONDS + 5, "103 quiet again")
        assert ("flapping", {"extension": "103", "flapping": False}) in stream.events
        wait_for(
            lambda: (
                kinds(service, "103", "flapping_started,flapping_stopped")
                == ["flapping_stopped", "flapping_started"]
            ),
            2,
            "both flapping events in the history",
        )
    finally:
        stream.close()
        service.stop()


def test_api_refuses_bad_input_and_keeps_the_audit_for_admins(
    history_lab: Lab, tmp_path: Path
) -> None:
    service = start(history_lab, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'api.db'}")
    try:
        assert service.get("/endpoints/101/history", params={"kind": "nonsense"}).status_code == 422
        assert service.get("/endpoints/101/history", params={"limit": "0"}).status_code == 422
        assert service.get("/history", params={"cursor": "not-a-cursor"}).status_code == 422
        assert service.get("/history", token=None).status_code == 401
        assert service.get("/history", token=VIEWER_TOKEN).status_code == 200
        assert service.get("/audit", token=VIEWER_TOKEN).status_code == 403
        audit = service.get("/audit")
        assert audit.status_code == 200
        assert audit.json() == {"entries": [], "next_cursor": None}
        csv = service.get("/history", headers={"Accept": "text/csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        kinds_seen = {e["kind"] for e in service.get("/history").json()["events"]}
        assert {"ami_connected", "config_loaded"} <= kinds_seen
    finally:
        service.stop()


def test_a_database_that_goes_away_costs_no_http_and_its_queue_is_written_on_return(
    history_lab: Lab, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    servers = running_postgres(tmp_path_factory)  # a server of its own, to stop
    server = next(servers)
    try:
        url = server.create_database("outage")
        service = start(history_lab, tmp_path, url)
        phone = Phone(history_lab, "104")
        try:
            server.stop()
            phone.register()
            started = time.monotonic()
            assert service.get("/endpoints").status_code == 200
            assert service.get("/endpoints/104").status_code == 200
            assert time.monotonic() - started < 1.0
            database = wait_for(
                lambda: (
                    (d := service.get("/health").json()["database"])["state"] == "unavailable" and d
                ),
                10,
                "the database reported unavailable",
            )
            assert database["queued"] >= 1
            assert service.get("/health").json()["status"] == "degraded"
            assert service.get("/endpoints/104/history").status_code == 503
            server.start()
            wait_for(lambda: service.get("/health").json()["database"]["state"] == "ok", 40, "ok")
            wait_for(lambda: "registered" in kinds(service, "104"), 10, "the queued event")
        finally:
            service.stop()
            phone.unregister()
    finally:
        servers.close()  # removes the server
