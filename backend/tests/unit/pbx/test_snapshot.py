"""ListPublisher with a fake row source: partial rebuilds, the change feed, ETag and gzip."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ispbx.pbx import snapshot as snapshot_module
from ispbx.pbx.snapshot import FEED_SIZE, ListPublisher, Rendered, dumps
from tests.unit.ami.fake_ami import wait_until


class FakeRows:
    """A RowSource whose rows the test edits, counting what the publisher asks for."""

    def __init__(self, names: list[str]) -> None:
        self.rows = {n: {"extension": n, "status": "offline", "contacts": []} for n in names}
        self.ami_connected = True
        self.list_calls = 0
        self.row_calls: list[str] = []

    def envelope(self) -> dict[str, Any]:
        return {
            "status": "success",
            "ami_connected": self.ami_connected,
            "stale_since": None if self.ami_connected else "2024-01-01T00:00:00+00:00",
            "config_error": None,
        }

    def list_endpoints(self) -> dict[str, Any]:
        self.list_calls += 1
        return {**self.envelope(), "endpoints": [copy.deepcopy(r) for r in self.rows.values()]}

    def row(self, name: str) -> dict[str, Any] | None:
        self.row_calls.append(name)
        row = self.rows.get(name)
        return copy.deepcopy(row) if row is not None else None

    def names(self) -> list[str]:
        return sorted(self.rows)


@pytest.fixture
async def rows() -> FakeRows:
    return FakeRows(["101", "102", "103"])


@pytest.fixture
async def publisher(rows: FakeRows) -> AsyncIterator[ListPublisher]:
    pub = ListPublisher(rows, first_id=1)
    pub.snapshot()  # the first build, as the first request would make it
    pub.start()
    yield pub
    await pub.stop()


async def rebuilt(publisher: ListPublisher, builds: int) -> None:
    await wait_until(lambda: publisher.builds >= builds, 1)


def kinds(publisher: ListPublisher, after: int = 0) -> list[tuple[int, str, Any]]:
    events = publisher.events_after(after)
    assert events is not None
    return [(e.id, e.kind, e.data.get("extension")) for e in events]


# -- rebuilds --------------------------------------------------------------------------------------


async def test_only_the_changed_rows_are_rebuilt(publisher: ListPublisher, rows: FakeRows) -> None:
    first = publisher.snapshot()
    assert rows.list_calls == 1
    rows.rows["102"]["status"] = "online"
    publisher.endpoints_changed({"102"})
    await rebuilt(publisher, 2)
    second = publisher.snapshot()
    assert rows.list_calls == 1  # no full rebuild
    assert rows.row_calls == ["102"]
    assert second.rows["102"]["status"] == "online"
    assert second.rows["101"] is first.rows["101"]  # untouched rows are reused as they are
    assert second.names == ["101", "102", "103"]
    assert first.rows["102"]["status"] == "offline"  # an old snapshot never changes


async def test_a_burst_of_changes_is_one_build(publisher: ListPublisher, rows: FakeRows) -> None:
    for name in ("101", "102", "103", "101"):
        rows.rows[name]["status"] = "online"
        publisher.endpoints_changed({name})
    await rebuilt(publisher, 2)
    await wait_until(lambda: publisher.snapshot().rows["103"]["status"] == "online", 1)
    assert publisher.builds == 2
    assert sorted(rows.row_calls) == ["101", "102", "103"]


async def test_full_rebuild_adds_and_removes_rows(publisher: ListPublisher, rows: FakeRows) -> None:
    del rows.rows["102"]
    rows.rows["104"] = {"extension": "104", "status": "offline", "contacts": []}
    publisher.everything_changed()
    await rebuilt(publisher, 2)
    assert publisher.snapshot().names == ["101", "103", "104"]
    assert rows.list_calls == 2
    assert kinds(publisher) == [(1, "endpoint", "104"), (2, "removed", "102")]


async def test_serialised_rows_are_reused_across_builds(
    publisher: ListPublisher, rows: FakeRows
) -> None:
    transformed: list[Any] = []

    def transform(body: dict[str, Any]) -> dict[str, Any]:
        transformed.append(body.get("extension", "envelope"))
        return body

    first = publisher.snapshot().rendered("admin", transform)
    assert sorted(transformed) == ["101", "102", "103", "envelope"]
    assert publisher.snapshot().rendered("admin", transform) is first  # once per snapshot

    transformed.clear()
    rows.rows["103"]["status"] = "online"
    publisher.endpoints_changed({"103"})
    await rebuilt(publisher, 2)
    second = publisher.snapshot().rendered("admin", transform)
    assert transformed == ["103", "envelope"]
    assert json.loads(second.body) == publisher.snapshot().body
    assert json.loads(second.body)["endpoints"][2]["status"] == "online"
    assert second.etag != first.etag


# -- the change feed -------------------------------------------------------------------------------


async def test_feed_has_status_endpoint_and_removed_events_with_rising_ids(
    publisher: ListPublisher, rows: FakeRows
) -> None:
    assert publisher.last_id == 0
    assert publisher.events_after(0) == []

    rows.rows["101"]["status"] = "online"
    publisher.endpoints_changed({"101"})
    await rebuilt(publisher, 2)
    rows.ami_connected = False
    publisher.envelope_changed()
    await rebuilt(publisher, 3)
    del rows.rows["103"]
    publisher.everything_changed()
    await rebuilt(publisher, 4)

    assert kinds(publisher) == [(1, "endpoint", "101"), (2, "status", None), (3, "removed", "103")]
    events = publisher.events_after(0)
    assert events is not None
    assert events[0].data["status"] == "online"
    assert events[1].data["ami_connected"] is False
    assert events[1].data["stale_since"] == "2024-01-01T00:00:00+00:00"
    assert events[2].data == {"extension": "103"}
    assert publisher.last_id == 3
    # a client that saw up to 1 gets 2 and 3; one that saw everything gets nothing
    assert kinds(publisher, 1) == [(2, "status", None), (3, "removed", "103")]
    assert publisher.events_after(3) == []


async def test_ami_going_down_shows_in_the_list_at_once_not_after_the_debounce(
    publisher: ListPublisher, rows: FakeRows
) -> None:
    publisher.snapshot()
    rows.ami_connected = False
    publisher.envelope_changed()  # no await: no chance for the debounced task to run
    assert publisher.snapshot().envelope["ami_connected"] is False
    assert kinds(publisher) == [(1, "status", None)]


async def test_a_write_rebuilds_only_its_rows_and_they_may_appear_or_vanish(
    publisher: ListPublisher, rows: FakeRows
) -> None:
    publisher.snapshot()
    rows.rows["100"] = {"extension": "100", "status": "offline", "contacts": []}  # created
    del rows.rows["102"]  # deleted
    rows.list_calls = 0
    publisher.endpoints_changed({"100", "102"})
    await rebuilt(publisher, 2)
    assert rows.list_calls == 0  # no full build
    assert publisher.snapshot().names == ["100", "101", "103"]
    assert kinds(publisher) == [(1, "endpoint", "100"), (2, "removed", "102")]


async def test_a_change_that_changes_nothing_is_not_published(
    publisher: ListPublisher, rows: FakeRows
) -> None:
    publisher.endpoints_changed({"101", "unknown"})
    publisher.envelope_changed()
    await rebuilt(publisher, 2)
    assert publisher.last_id == 0
    assert publisher.events_after(0) == []


async def test_subscribers_are_woken_by_new_events(
    publisher: ListPublisher, rows: FakeRows
) -> None:
    wake, unsubscribe = publisher.subscribe()
    rows.rows["102"]["status"] = "online"
    publisher.endpoints_changed({"102"})
    await wait_until(wake.is_set, 1)
    unsubscribe()


async def test_events_after_is_none_from_the_future_or_when_too_old(
    publisher: ListPublisher, rows: FakeRows
) -> None:
    assert publisher.events_after(1) is None  # from the future: nothing has id 1 yet
    names = [str(n) for n in range(20000, 21100)]
    rows.rows = {n: {"extension": n, "status": "offline", "contacts": []} for n in names}
    publisher.everything_changed()
    await rebuilt(publisher, 2)
    # 1100 new rows + 3 removed ones; the feed keeps only the last FEED_SIZE
    assert publisher.last_id == 1103
    assert len(publisher.feed) == FEED_SIZE
    assert publisher.events_after(0) is None  # too old: the client must refetch (reset)
    assert publisher.events_after(1103 - FEED_SIZE - 1) is None
    kept = publisher.events_after(1103 - FEED_SIZE)
    assert kept is not None
    assert len(kept) == FEED_SIZE
    assert [e.id for e in kept] == list(range(1104 - FEED_SIZE, 1104))
    assert publisher.events_after(1102) == [publisher.feed[-1]]
    assert publisher.events_after(1104) is None


# -- Rendered: ETag and gzip -----------------------------------------------------------------------


def test_rendered_has_a_stable_strong_etag() -> None:
    body = dumps({"endpoints": [{"extension": "101", "callerid": "Jörg"}]})
    one, two = Rendered(body), Rendered(bytes(body))
    assert one.etag == two.etag
    assert one.etag.startswith('"') and one.etag.endswith('"')
    assert not one.etag.startswith("W/")
    assert len(one.etag) > 20
    assert Rendered(body.replace(b"101", b"102")).etag != one.etag


def test_gzip_is_made_lazily_once_and_decompresses_to_the_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = gzip.compress

    def counting(data: bytes, **kwargs: Any) -> bytes:
        calls.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(snapshot_module.gzip, "compress", counting)
    body = dumps({"endpoints": [{"extension": str(n), "status": "offline"} for n in range(500)]})
    rendered = Rendered(body)
    assert calls == []
    zipped = rendered.gzipped
    assert rendered.gzipped is zipped
    assert calls == [len(body)]
    assert gzip.decompress(zipped) == body
    assert len(zipped) < len(body) / 4
    # deterministic (mtime=0): the same body gives the same bytes, so caches agree
    assert Rendered(body).gzipped == zipped


def test_dumps_is_compact_utf8() -> None:
    assert dumps({"a": "ö", "b": [1, None]}) == '{"a":"ö","b":[1,null]}'.encode()


def test_event_ids_of_a_new_process_are_above_any_id_of_an_earlier_one() -> None:
    """Ids start at the process's start time, so a browser's Last-Event-ID from before a restart
    gets a reset instead of a replay of unrelated events."""
    earlier = ListPublisher(FakeRows([]))
    later = ListPublisher(FakeRows([]))
    assert later.last_id >= earlier.last_id > 10**15
    assert later.events_after(earlier.last_id - 5) is None
