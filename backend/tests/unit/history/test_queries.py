"""Queries on a real database: history pages, availability, retention (SQLite here; the
PostgreSQL integration tests run these same classes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from ispbx.history import (
    Database,
    EventKind,
    HistoryEvent,
    HistoryQueries,
    HistoryStore,
    InvalidQuery,
)
from tests.unit.history.fixtures import T0

K = EventKind
S = timedelta(seconds=1)


def ev(
    seconds: float, kind: EventKind, endpoint: str | None = "101", pbx: str = "pbx", **data: Any
) -> HistoryEvent:
    return HistoryEvent(pbx, endpoint, kind, T0 + seconds * S, data)


async def write(database: Database, *events: HistoryEvent) -> None:
    await HistoryStore(database).write_events(events)


def queries(database: Database, now: datetime | None = None) -> HistoryQueries:
    return HistoryQueries(database, clock=lambda: now or T0 + timedelta(days=365))


class TestHistory:
    async def test_endpoint_history_is_newest_first_with_its_data(self, database: Database) -> None:
        await write(
            database,
            ev(0, K.REGISTERED, uri="sip:101@127.0.0.1:5062", user_agent="Phone/1"),
            ev(5, K.DEVICE_STATE, state="In use", previous="Not in use"),
            ev(7, K.REGISTERED, endpoint="102"),
        )
        page = await queries(database).endpoint_history("pbx", "101")
        assert [row.kind for row in page.rows] == [K.DEVICE_STATE, K.REGISTERED]
        assert page.rows[1].data == {"uri": "sip:101@127.0.0.1:5062", "user_agent": "Phone/1"}
        assert page.rows[1].occurred_at == T0
        assert page.rows[0].as_dict()["occurred_at"] == "2025-03-01T12:00:05.000000Z"
        assert page.next_cursor is None

    async def test_since_until_and_kinds_filter(self, database: Database) -> None:
        await write(database, *(ev(i, K.RTT if i % 2 else K.REGISTERED) for i in range(10)))
        q = queries(database)
        page = await q.endpoint_history("pbx", "101", since=T0 + 2 * S, until=T0 + 6 * S)
        assert [row.occurred_at for row in page.rows] == [T0 + i * S for i in (5, 4, 3, 2)]
        page = await q.endpoint_history("pbx", "101", kinds=[K.RTT])
        assert {row.kind for row in page.rows} == {K.RTT}
        assert len(page.rows) == 5
        page = await q.endpoint_history("pbx", "101", kinds=[])
        assert page.rows == []

    async def test_cursor_pages_through_every_row_once_even_with_equal_times(
        self, database: Database
    ) -> None:
        # 25 events over 5 distinct timestamps: the keyset must use the id as well.
        await write(database, *(ev(i // 5, K.RTT, n=i) for i in range(25)))
        q = queries(database)
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            page = await q.endpoint_history("pbx", "101", limit=7, cursor=cursor)
            seen += [row.data["n"] for row in page.rows]
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert pages == 4
        assert sorted(seen) == list(range(25))
        assert len(seen) == 25
        times = [n // 5 for n in seen]
        assert times == sorted(times, reverse=True)

    async def test_a_full_last_page_has_no_next_cursor(self, database: Database) -> None:
        await write(database, *(ev(i, K.RTT) for i in range(4)))
        page = await queries(database).endpoint_history("pbx", "101", limit=4)
        assert len(page.rows) == 4
        assert page.next_cursor is None

    async def test_rows_written_after_a_page_do_not_shift_the_next_one(
        self, database: Database
    ) -> None:
        await write(database, *(ev(i, K.RTT, n=i) for i in range(6)))
        q = queries(database)
        first = await q.endpoint_history("pbx", "101", limit=3)
        await write(database, ev(100, K.RTT, n=100))
        second = await q.endpoint_history("pbx", "101", limit=3, cursor=first.next_cursor)
        assert [row.data["n"] for row in second.rows] == [2, 1, 0]

    async def test_limits_and_cursors_are_checked(self, database: Database) -> None:
        q = queries(database)
        with pytest.raises(InvalidQuery, match="limit"):
            await q.endpoint_history("pbx", "101", limit=0)
        with pytest.raises(InvalidQuery, match="limit"):
            await q.fleet_history("pbx", limit=1001)
        with pytest.raises(InvalidQuery, match="cursor"):
            await q.endpoint_history("pbx", "101", cursor="not-a-cursor")
        with pytest.raises(InvalidQuery, match="since"):
            await q.endpoint_history("pbx", "101", since=datetime(2025, 1, 1))
        assert len((await q.endpoint_history("pbx", "101", limit=1000)).rows) == 0

    async def test_default_limit_is_100(self, database: Database) -> None:
        await write(database, *(ev(i, K.RTT) for i in range(120)))
        page = await queries(database).endpoint_history("pbx", "101")
        assert len(page.rows) == 100
        assert page.next_cursor is not None

    async def test_fleet_history_has_pbx_wide_events_and_filters_by_extension(
        self, database: Database
    ) -> None:
        await write(
            database,
            ev(0, K.AMI_CONNECTED, endpoint=None, message="logged in"),
            ev(1, K.REGISTERED, endpoint="101"),
            ev(2, K.REGISTERED, endpoint="102"),
            ev(3, K.CONFIG_REJECTED, endpoint=None, file="pjsip.conf", line=12),
            ev(4, K.REGISTERED, endpoint="101", pbx="other"),
        )
        q = queries(database)
        page = await q.fleet_history("pbx")
        assert [(r.kind, r.endpoint) for r in page.rows] == [
            (K.CONFIG_REJECTED, None),
            (K.REGISTERED, "102"),
            (K.REGISTERED, "101"),
            (K.AMI_CONNECTED, None),
        ]
        assert page.rows[0].data == {"file": "pjsip.conf", "line": 12}
        page = await q.fleet_history("pbx", extension="101")
        assert [r.endpoint for r in page.rows] == ["101"]
        page = await q.fleet_history("pbx", since=T0 + 2 * S, kinds=[K.REGISTERED])
        assert [r.endpoint for r in page.rows] == ["102"]

    async def test_secrets_never_reach_the_database(self, database: Database) -> None:
        await write(
            database,
            ev(0, K.CONFIG_LOADED, endpoint=None, password="hunter2", auth={"md5_cred": "x"}),
        )
        async with database.begin() as conn:
            raw = (await conn.exec_driver_sql("SELECT data FROM events")).scalar()
        assert "hunter2" not in str(raw)
        row = (await queries(database).fleet_history("pbx")).rows[0]
        assert row.data == {"password": "********", "auth": {"md5_cred": "********"}}

    async def test_unicode_survives(self, database: Database) -> None:
        await write(database, ev(0, K.REGISTERED, user_agent="Téléphone ☎"))
        row = (await queries(database).endpoint_history("pbx", "101")).rows[0]
        assert row.data["user_agent"] == "Téléphone ☎"


class TestAvailability:
    async def test_a_known_outage_with_the_state_at_since_from_before_it(
        self, database: Database
    ) -> None:
        await write(
            database,
            ev(-3600, K.REGISTERED, online=True, contacts=1),
            ev(-1800, K.RTT, rtt_us=5000),  # not a transition: ignored
            ev(600, K.UNREGISTERED, online=False, contacts=0),
            ev(690, K.REGISTERED, online=True, contacts=1),
            ev(700, K.DEVICE_STATE, state="In use"),
            ev(800, K.REGISTERED, endpoint="102", online=True, contacts=1),
        )
        result = await queries(database).availability("pbx", "101", T0, T0 + 3600 * S)
        assert result.offline_seconds == 90
        assert result.online_seconds == 3510
        assert result.unknown_seconds == 0
        assert result.availability == pytest.approx(3510 / 3600)

    async def test_ami_outages_are_unknown_for_every_endpoint(self, database: Database) -> None:
        await write(
            database,
            ev(-60, K.REGISTERED),
            ev(-30, K.AMI_LOST, endpoint=None),
            ev(120, K.AMI_RECONNECTED, endpoint=None),
            ev(300, K.AMI_HUNG, endpoint=None),
            ev(360, K.AMI_CONNECTED, endpoint=None),
            ev(400, K.AMI_LOST, endpoint=None, pbx="other"),  # another PBX: no effect
        )
        result = await queries(database).availability("pbx", "101", T0, T0 + 600 * S)
        assert result.unknown_seconds == 120 + 60
        assert result.online_seconds == 600 - 180

    async def test_a_window_reaching_past_now_ends_now(self, database: Database) -> None:
        await write(database, ev(0, K.REGISTERED))
        q = queries(database, now=T0 + 100 * S)
        result = await q.availability("pbx", "101", T0, T0 + 3600 * S)
        assert result.until == T0 + 100 * S
        assert result.online_seconds == 100
        result = await q.availability("pbx", "101", T0 - 100 * S)
        assert result.unknown_seconds == 100
        assert result.online_seconds == 100

    async def test_an_inverted_window_is_refused(self, database: Database) -> None:
        with pytest.raises(InvalidQuery, match="before since"):
            await queries(database).availability("pbx", "101", T0, T0 - S)

    async def test_an_endpoint_never_seen_is_unknown(self, database: Database) -> None:
        result = await queries(database).availability("pbx", "999", T0, T0 + 60 * S)
        assert result.unknown_seconds == 60
        assert result.availability is None


class TestRetention:
    async def test_prune_deletes_old_events_but_keeps_the_state_they_left(
        self, database: Database
    ) -> None:
        day = 86400
        await write(
            database,
            ev(-100 * day, K.UNREGISTERED),
            ev(-99 * day, K.REGISTERED, n="kept: 101's last transition"),
            ev(-98 * day, K.RTT),
            ev(-97 * day, K.DEVICE_STATE, state="In use"),
            ev(-96 * day, K.AMI_LOST, endpoint=None),
            ev(-95 * day, K.AMI_CONNECTED, endpoint=None, n="kept: the last AMI event"),
            ev(-94 * day, K.CONFIG_LOADED, endpoint=None),
            ev(-93 * day, K.REGISTERED, endpoint="102"),  # kept too (one old row per endpoint)
            ev(-5 * day, K.UNREGISTERED, endpoint="102"),
            ev(-1 * day, K.RTT),
        )
        q = queries(database)
        deleted = await q.prune(T0 - 90 * day * S)
        assert deleted == 5
        remaining = (await q.fleet_history("pbx")).rows
        assert {(r.endpoint, r.kind) for r in remaining} == {
            ("101", K.REGISTERED),
            (None, K.AMI_CONNECTED),
            ("102", K.REGISTERED),
            ("102", K.UNREGISTERED),
            ("101", K.RTT),
        }
        result = await q.availability("pbx", "101", T0 - 10 * day * S, T0)
        assert result.online_seconds == 10 * day
        assert await q.prune(T0 - 90 * day * S) == 0

    async def test_prune_goes_in_chunks(
        self, database: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("ispbx.history.queries.PRUNE_CHUNK", 7)
        await write(database, *(ev(-1000 + i, K.RTT, endpoint=f"e{i % 3}") for i in range(50)))
        q = queries(database)
        assert await q.prune(T0) == 50
        assert await q.count_events() == 0
