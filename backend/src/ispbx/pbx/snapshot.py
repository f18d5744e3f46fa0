"""The endpoint list, built and serialised once per change, and the change feed behind /events.

Every change of the inventory, of pjsip.conf or of the AMI connection marks the list dirty; a
short debounce later :class:`ListPublisher` rebuilds it once, serialises it (plain and gzip, with a
strong ETag), diffs it against the previous build and appends the changed rows to a bounded feed
that server-sent-event clients read (and resume from with Last-Event-ID).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ispbx.pbx.bodies import EndpointListBody, EnvelopeBody, ListRow
from ispbx.pjsip.store import ConfigView
from ispbx.tasks import cancel_and_wait

log = logging.getLogger(__name__)
DEBOUNCE = 0.02  # gather a burst of events into one build
MIN_INTERVAL = 0.1  # at most ten builds a second, however busy Asterisk is
FEED_SIZE = 1000


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class Rendered:
    """One serialised body with its strong ETag and (lazily) its gzip form."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        digest = hashlib.blake2b(body, digest_size=16).hexdigest()
        self.etag = f'"{digest}"'
        self.gzip_etag = f'"{digest}-gz"'  # a strong ETag differs per content coding
        self._gzipped: bytes | None = None

    @property
    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=5, mtime=0)
        return self._gzipped


@dataclass(frozen=True)
class FeedEvent:
    id: int
    kind: str  # "endpoint", "removed", "status"
    data: Mapping[str, Any]


class RowSource(Protocol):
    """What the publisher needs from the read model."""

    def envelope(self) -> EnvelopeBody: ...
    def list_endpoints(self) -> EndpointListBody: ...
    def row(self, name: str) -> ListRow | None: ...
    def names(self) -> list[str]: ...  # every endpoint's name, in the list's order


@dataclass
class ListSnapshot:
    """One build of GET /endpoints: envelope + rows in order, serialised lazily per variant."""

    version: int
    envelope: EnvelopeBody
    names: list[str]
    rows: dict[str, ListRow]
    # variant -> name -> (row, its JSON); shared by snapshots, valid only for that very row object
    _row_bytes: dict[str, dict[str, tuple[ListRow, bytes]]]
    _rendered: dict[str, Rendered] = field(default_factory=dict)

    @property
    def body(self) -> EndpointListBody:
        return {**self.envelope, "endpoints": [self.rows[n] for n in self.names]}

    def rendered(self, variant: str, transform: Callable[[Any], Any]) -> Rendered:
        """The serialised body for one variant (e.g. a role), built at most once per snapshot.

        Rows are serialised once per change and reused across snapshots."""
        cached = self._rendered.get(variant)
        if cached is None:
            cache = self._row_bytes.setdefault(variant, {})
            parts = []
            for name in self.names:
                row = self.rows[name]
                hit = cache.get(name)
                if hit is None or hit[0] is not row:
                    hit = cache[name] = (row, dumps(transform(row)))
                parts.append(hit[1])
            head = dumps(transform(self.envelope))[:-1] + b',"endpoints":['
            cached = self._rendered[variant] = Rendered(head + b",".join(parts) + b"]}")
        return cached


class ListPublisher:
    """Rebuilds the rows that changed, at most every MIN_INTERVAL, and keeps the change feed."""

    def __init__(self, source: RowSource, *, first_id: int | None = None) -> None:
        self._source = source
        self._snapshot: ListSnapshot | None = None
        self._dirty = asyncio.Event()
        self._pending: set[str] = set()
        self._full = True
        self._task: asyncio.Task[None] | None = None
        self._row_bytes: dict[str, dict[str, tuple[ListRow, bytes]]] = {}
        self.feed: deque[FeedEvent] = deque(maxlen=FEED_SIZE)
        # Ids start at this process's start time in microseconds: an id a browser kept from an
        # earlier process is older than every id of this one, so it gets a reset, not a replay.
        self._next_id = time.time_ns() // 1000 if first_id is None else first_id
        self._subscribers: set[asyncio.Event] = set()
        self.builds = 0
        self.closing = False

    @property
    def last_id(self) -> int:
        return self._next_id - 1

    def snapshot(self) -> ListSnapshot:
        if self._snapshot is None:
            self._rebuild()
        assert self._snapshot is not None
        return self._snapshot

    def endpoints_changed(self, names: set[str] | None) -> None:
        """Inventory listener: these endpoints changed (None: all of them)."""
        if names is None:
            self._full = True
        else:
            self._pending |= names
        self._dirty.set()

    def everything_changed(self, _cause: object = None) -> None:
        """Rows may appear, vanish or change."""
        self.endpoints_changed(None)

    def config_changed(self, view: ConfigView) -> None:
        """pjsip.conf changed: every row may change, unless the view names the endpoints a
        write touched."""
        self.endpoints_changed(None if view.touched is None else set(view.touched))

    def envelope_changed(self, _cause: object = None) -> None:
        """AMI went up or down: the envelope changes at once, not after the debounce, so the
        list never says ``ami_connected`` once /health says AMI is down (a build that changes
        only the envelope and the rows already pending is cheap, and this is rare)."""
        if self._snapshot is None:
            self._dirty.set()
            return
        self._rebuild()

    def rebuild_now(self) -> None:
        """Rebuild at once what is marked (a write answers only once the list shows it)."""
        if self._dirty.is_set():
            self._dirty.clear()
            self._rebuild()

    def announce(self, kind: str, data: Mapping[str, Any]) -> None:
        """A feed event that is not a row change (e.g. ``flapping``), sent to every stream."""
        self.feed.append(FeedEvent(self._next_id, kind, data))
        self._next_id += 1
        for subscriber in self._subscribers:
            subscriber.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="list-publisher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def close_streams(self) -> None:
        """The service is shutting down: wake every subscriber so its stream can end."""
        self.closing = True
        for subscriber in self._subscribers:
            subscriber.set()

    @property
    def subscriber_count(self) -> int:
        """Open /events streams."""
        return len(self._subscribers)

    def subscribe(self) -> tuple[asyncio.Event, Callable[[], None]]:
        event = asyncio.Event()
        self._subscribers.add(event)
        return event, lambda: self._subscribers.discard(event)

    def events_after(self, last_id: int) -> list[FeedEvent] | None:
        """Feed events newer than ``last_id``; None when they are no longer kept (resync)."""
        if last_id > self.last_id:
            return None
        if last_id == self.last_id:
            return []
        if not self.feed or self.feed[0].id > last_id + 1:
            return None
        return [event for event in self.feed if event.id > last_id]

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(DEBOUNCE)
            self._dirty.clear()
            try:
                self._rebuild()
            except Exception:  # a bug must not freeze GET /endpoints for good
                log.exception("rebuilding the endpoint list failed; will retry on the next change")
                self._full = True
            await asyncio.sleep(MIN_INTERVAL)

    def _rebuild(self) -> None:
        old = self._snapshot
        full, pending = self._full or old is None, self._pending
        self._full, self._pending = False, set()
        if full or old is None:
            body = self._source.list_endpoints()
            rows = {row["extension"]: row for row in body["endpoints"]}
            names = list(rows)
            changed = set(rows)
            for cache in self._row_bytes.values():  # forget rows of deleted endpoints
                for gone in cache.keys() - rows.keys():
                    del cache[gone]
        else:
            rows, names, changed = self._apply_pending(old, pending)
        changed = {n for n in changed if old is None or old.rows.get(n) != rows[n]}
        envelope = self._source.envelope()
        version = (old.version + 1) if old else 1
        self._snapshot = ListSnapshot(version, envelope, names, rows, self._row_bytes)
        self.builds += 1
        if old is not None:
            self._publish(old, self._snapshot, changed)

    def _apply_pending(
        self, old: ListSnapshot, pending: set[str]
    ) -> tuple[dict[str, ListRow], list[str], set[str]]:
        """The rows after rebuilding just ``pending``: a row may change, appear (an endpoint
        created) or vanish (one that neither Asterisk nor the file knows any more)."""
        rows, names = dict(old.rows), old.names
        appeared = vanished = False
        for name in pending:
            row = self._source.row(name)
            if row is None:
                vanished |= rows.pop(name, None) is not None
                for cache in self._row_bytes.values():
                    cache.pop(name, None)
                continue
            appeared |= name not in rows
            rows[name] = row
        if appeared or vanished:
            names = [name for name in self._source.names() if name in rows]
        return rows, names, pending & rows.keys()

    def _publish(self, old: ListSnapshot, new: ListSnapshot, changed: set[str]) -> None:
        events: list[tuple[str, Any]] = []
        if new.envelope != old.envelope:
            events.append(("status", new.envelope))
        events.extend(("endpoint", new.rows[n]) for n in new.names if n in changed)
        events.extend(("removed", {"extension": n}) for n in old.rows.keys() - new.rows.keys())
        for kind, data in events:
            self.feed.append(FeedEvent(self._next_id, kind, data))
            self._next_id += 1
        if events:
            for subscriber in self._subscribers:
                subscriber.set()
