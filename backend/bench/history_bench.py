"""History database figures (SQLite): reads with 1,000,000 events in the table, size, write rate.

    cd backend && python -m bench.history_bench

``run()`` returns the report lines (``make bench`` prints them beside the read-path figures).
The table is filled in a temporary directory with ``executemany`` through the stdlib sqlite3
module (the schema comes from the real migrations), then measured through the real
``HistoryQueries`` on the async engine, as the routes will use it.

Settings (environment): BENCH_HISTORY_EVENTS (default 1000000), BENCH_HISTORY_ENDPOINTS (1000),
BENCH_HISTORY_SAMPLES (200).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ispbx.history import (
    EventKind,
    HistoryEvent,
    HistoryQueries,
    HistoryRecorder,
    open_database,
    upgrade,
)
from ispbx.history.events import CONTACT_TRANSITIONS, to_us

PBX = "pbx"
DAYS = 90
NOW = datetime(2025, 6, 1, tzinfo=UTC)
TARGET_HISTORY_MS = 20.0
TARGET_AVAILABILITY_MS = 50.0
RECORDER_EVENTS = 100_000
# Share of each kind in the generated table: device states and RTT moves dominate real history.
MIX = (
    (EventKind.DEVICE_STATE, 40),
    (EventKind.RTT, 25),
    (EventKind.REGISTERED, 12),
    (EventKind.UNREGISTERED, 12),
    (EventKind.UNREACHABLE, 5),
    (EventKind.REACHABLE, 5),
)
STATES = ("Not in use", "In use", "Ringing", "Unavailable")
HOT = "9999"
HOT_SHARE = 0.1


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def progress(text: str) -> None:
    print(f"[history-bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _data(kind: EventKind, endpoint: str, rng: random.Random) -> str:
    uri = f"sip:{endpoint}@127.0.0.1:{5062 + rng.randrange(200)};ob"
    if kind == EventKind.DEVICE_STATE:
        return json.dumps({"state": rng.choice(STATES), "previous": rng.choice(STATES)})
    if kind == EventKind.RTT:
        rtt = rng.randrange(1000, 300_000)
        return json.dumps({"uri": uri, "rtt_us": rtt, "previous_rtt_us": rtt // 2})
    online = kind in (EventKind.REGISTERED, EventKind.REACHABLE)
    data: dict[str, object] = {"uri": uri, "online": online, "contacts": int(online)}
    if kind == EventKind.REGISTERED:
        data |= {
            "aor": endpoint,
            "status": "Reachable",
            "user_agent": "Linphone/5.2.5 (belle-sip/5.2.0)",
            "via_address": f"127.0.0.1:{5062 + rng.randrange(200)}",
            "rtt_us": rng.randrange(1000, 90_000),
            "reg_expire": 1_748_736_000 + rng.randrange(3600),
        }
    return json.dumps(data, separators=(",", ":"))


def _rows(count: int, endpoints: list[str]) -> Iterator[tuple[object, ...]]:
    """``count`` events spread evenly over DAYS, in time order (as the recorder writes them),
    plus an AMI outage every ~10 days."""
    rng = random.Random(1)
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    start = to_us(NOW - timedelta(days=DAYS))
    step = to_us(NOW) - start
    for i in range(count):
        at = start + step * i // count
        if i % (count // (DAYS // 10) or 1) == 0:
            yield (PBX, None, "ami_lost", at, '{"message":"connection reset"}')
            yield (PBX, None, "ami_reconnected", at + 30_000_000, "{}")
            continue
        # One endpoint in ten events: a phone that flaps all the time (the worst case).
        endpoint = HOT if rng.random() < HOT_SHARE else rng.choice(endpoints)
        kind = rng.choice(kinds)
        yield (PBX, endpoint, kind.value, at, _data(kind, endpoint, rng))


def build(path: Path, count: int, endpoints: list[str]) -> tuple[float, int]:
    """Fill the table; the seconds it took and the database's size in bytes afterwards."""
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO events (pbx, endpoint, kind, occurred_at, data) VALUES (?, ?, ?, ?, ?)",
            _rows(count, endpoints),
        )
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    seconds = time.perf_counter() - started
    files = [path, *path.parent.glob(path.name + "-*")]
    return seconds, sum(file.stat().st_size for file in files if file.exists())


def _ms(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


def _verdict(median: float, target: float) -> str:
    return f"target ≤ {target:.0f} ms {'PASS' if median <= target else 'FAIL'}"


async def measure(url: str, endpoints: list[str], samples: int) -> dict[str, list[float]]:
    database = await open_database(url)
    queries = HistoryQueries(database, clock=lambda: NOW)
    rng = random.Random(2)
    times: dict[str, list[float]] = {"history": [], "deep": [], "availability": [], "hot": []}
    try:
        for warm in endpoints[:20]:
            await queries.endpoint_history(PBX, warm)
            await queries.availability(PBX, warm, NOW - timedelta(days=30))
        for _ in range(samples):
            endpoint = rng.choice(endpoints)
            started = time.perf_counter()
            page = await queries.endpoint_history(PBX, endpoint, limit=100)
            times["history"].append(time.perf_counter() - started)
            assert len(page.rows) == 100, f"{endpoint} has too few events for the bench"
            cursor = page.next_cursor
            for _ in range(4):  # a page five pages deep, by cursor
                cursor = (await queries.endpoint_history(PBX, endpoint, cursor=cursor)).next_cursor
            started = time.perf_counter()
            await queries.endpoint_history(PBX, endpoint, limit=100, cursor=cursor)
            times["deep"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await queries.availability(PBX, endpoint, NOW - timedelta(days=30), NOW)
            times["availability"].append(time.perf_counter() - started)
        for _ in range(max(samples // 10, 5)):
            started = time.perf_counter()
            hot = await queries.availability(PBX, HOT, NOW - timedelta(days=30), NOW)
            times["hot"].append(time.perf_counter() - started)
            assert hot.online_seconds > 0
    finally:
        await database.close()
    return times


async def recorder_rate(directory: Path, count: int) -> float:
    """Events per second through the real recorder (batches of 500, one transaction each)."""
    database = await open_database(f"sqlite+aiosqlite:///{directory / 'recorder.db'}")
    try:
        await upgrade(database)
        recorder = HistoryRecorder(database, queue_size=count)
        events = [
            HistoryEvent(
                PBX,
                str(1000 + i % 5000),
                EventKind.REGISTERED,
                NOW + timedelta(microseconds=i),
                {
                    "uri": f"sip:{1000 + i % 5000}@127.0.0.1:5062",
                    "user_agent": "Phone/1.0",
                    "online": True,
                    "contacts": 1,
                },
            )
            for i in range(count)
        ]
        started = time.perf_counter()
        await recorder.start()
        recorder.record_many(events)
        if not await recorder.flush(300):
            raise RuntimeError("the recorder did not keep up")
        elapsed = time.perf_counter() - started
        await recorder.stop()
        return count / elapsed
    finally:
        await database.close()


async def _run() -> list[str]:
    count = env_int("BENCH_HISTORY_EVENTS", 1_000_000)
    n_endpoints = env_int("BENCH_HISTORY_ENDPOINTS", 1000)
    samples = env_int("BENCH_HISTORY_SAMPLES", 200)
    endpoints = [str(1000 + i) for i in range(n_endpoints)]
    with tempfile.TemporaryDirectory(prefix="ispbx-history-bench-") as tmp:
        directory = Path(tmp)
        path = directory / "ispbx.db"
        url = f"sqlite+aiosqlite:///{path}"
        database = await open_database(url)
        await upgrade(database)
        await database.close()
        progress(f"filling {count:,} events for {n_endpoints:,} endpoints over {DAYS} days")
        seconds, size = await asyncio.to_thread(build, path, count, endpoints)
        progress("measuring reads")
        times = await measure(url, endpoints, samples)
        progress(f"writing {RECORDER_EVENTS:,} events through the recorder")
        rate = await recorder_rate(directory, RECORDER_EVENTS)
    history, history95 = _ms(times["history"])
    deep, deep95 = _ms(times["deep"])
    avail, avail95 = _ms(times["availability"])
    hot, hot95 = _ms(times["hot"])
    transition_share = sum(w for k, w in MIX if k in CONTACT_TRANSITIONS) / sum(w for _, w in MIX)
    hot_transitions = int(round(count * HOT_SHARE * 30 / DAYS * transition_share, -2))
    per_million = size / count * 1_000_000 / 1e6
    return [
        f"=== History database (SQLite {sqlite3.sqlite_version}) " + "=" * 56,
        f"  table: {count:,} events, {n_endpoints:,} endpoints, {DAYS} days "
        f"(~{count // n_endpoints:,} per endpoint); filled in {seconds:.1f} s",
        f"  endpoint history limit=100       median {history:6.2f} ms  p95 {history95:6.2f} ms"
        f"  (n={samples})  {_verdict(history, TARGET_HISTORY_MS)}",
        f"  ... its 6th page, by cursor      median {deep:6.2f} ms  p95 {deep95:6.2f} ms",
        f"  availability, 30 days, endpoint  median {avail:6.2f} ms  p95 {avail95:6.2f} ms"
        f"  (n={samples})  {_verdict(avail, TARGET_AVAILABILITY_MS)}",
        f"  ... of the flapping endpoint     median {hot:6.2f} ms  p95 {hot95:6.2f} ms"
        f"  ({HOT_SHARE:.0%} of all events: ~{hot_transitions:,} transitions in the window)",
        f"  database size                    {per_million:.0f} MB per 1,000,000 events"
        " (data + indexes, WAL checkpointed)",
        f"  recorder write rate              {rate:,.0f} events/s"
        " (batches of 500, one transaction each)",
    ]


def run() -> list[str]:
    """The figure lines (runs its own event loop)."""
    return asyncio.run(_run())


if __name__ == "__main__":
    print("\n".join(run()), flush=True)
