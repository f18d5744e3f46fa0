"""A registration storm: thousands of phones register within seconds (as after a network outage)
while a client reads ``GET /endpoints/{ext}``; then the history must hold every registration.

Each phone is the lab's SIP test phone on its own UDP port (digest REGISTER), a bounded number
in flight at once; the reads use the benchmark's urllib client in a thread.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field

from bench.amiproxy import LoopThread
from bench.client import Stats, bearer, get
from ispbx_lab.sipphone import SipError, SipPhone

IN_FLIGHT = 100
STORM_SECONDS = 10.0  # the phones' registrations are spread over this long, as in the target


@dataclass
class StormResult:
    phones: int
    seconds: float = 0.0
    failed: int = 0
    recorded: int = 0
    at_rest: Stats | None = None
    during: Stats | None = None
    ari_at_rest: Stats | None = None  # Asterisk's own GET /ari/endpoints/PJSIP/{ext}, alternated
    ari_during: Stats | None = None
    reads_during: list[float] = field(default_factory=list)

    def lines(self) -> list[str]:
        rest, storm = self.at_rest, self.during
        if rest is None or storm is None:
            return []
        ratio = storm.p95 / rest.p95 if rest.p95 else float("inf")
        return [
            f"Registration storm: {self.phones:,} phones register (new contacts, digest auth),"
            f" spread over {STORM_SECONDS:g} s: done in {self.seconds:.2f} s; {self.failed} failed",
            f"  history: {self.recorded:,} of {self.phones - self.failed:,} registrations recorded",
            f"  GET /endpoints/{{ext}} at rest   median {rest.median * 1000:.2f} ms,"
            f" p95 {rest.p95 * 1000:.2f} ms ({len(rest.samples)} samples)",
            f"  GET /endpoints/{{ext}} in storm  median {storm.median * 1000:.2f} ms,"
            f" p95 {storm.p95 * 1000:.2f} ms ({len(storm.samples)} samples)"
            f" = {ratio:.2f}x the p95 at rest",
            *self._ari_lines(),
            "",
        ]

    def _ari_lines(self) -> list[str]:
        rest, storm = self.ari_at_rest, self.ari_during
        if rest is None or storm is None or not rest.samples or not storm.samples:
            return []
        ratio = storm.p95 / rest.p95 if rest.p95 else float("inf")
        return [
            "  control, Asterisk's own ARI on the same server (alternated with the reads above):",
            f"  GET /ari/endpoints/PJSIP/{{ext}} at rest median {rest.median * 1000:.2f} ms,"
            f" p95 {rest.p95 * 1000:.2f} ms; in storm median {storm.median * 1000:.2f} ms,"
            f" p95 {storm.p95 * 1000:.2f} ms = {ratio:.2f}x",
        ]


@dataclass(frozen=True)
class Ari:
    """Asterisk's own HTTP API on the lab: the control beside the service's reads."""

    base: str
    auth: dict[str, str]


def _reads(
    base: str,
    token: str,
    exts: list[str],
    stop: threading.Event,
    out: tuple[list[float], list[float]],
    *,
    ari: Ari | None,
) -> None:
    auth = bearer(token)
    rng = random.Random(7)
    while not stop.is_set():
        ext = rng.choice(exts)
        out[0].append(get(f"{base}/endpoints/{ext}", auth).seconds)
        if ari is not None:
            out[1].append(get(f"{ari.base}/endpoints/PJSIP/{ext}", ari.auth).seconds)


def _sample_at_rest(
    base: str, token: str, exts: list[str], seconds: float, ari: Ari | None
) -> tuple[Stats, Stats]:
    out: tuple[list[float], list[float]] = ([], [])
    stop = threading.Event()
    thread = threading.Thread(
        target=_reads, args=(base, token, exts, stop, out), kwargs={"ari": ari}, daemon=True
    )
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join(10)
    return Stats(sorted(out[0])), Stats(sorted(out[1]))


async def _register_all(users: list[str], sip_port: int) -> int:
    """Register every user once, evenly spread over STORM_SECONDS; the number that failed."""
    gate = asyncio.Semaphore(IN_FLIGHT)
    failed = 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    step = STORM_SECONDS / max(1, len(users))

    async def one(index: int, user: str) -> None:
        nonlocal failed
        await asyncio.sleep(max(0.0, started + index * step - loop.time()))
        async with gate:
            try:
                async with SipPhone(user, f"pw{user}", registrar=("127.0.0.1", sip_port)) as p:
                    await p.register(expires=600)
            except (OSError, SipError, TimeoutError):
                failed += 1

    await asyncio.gather(*(one(i, user) for i, user in enumerate(users)))
    return failed


def _recorded_since(base: str, token: str, since: str, wanted: set[str]) -> int:
    """How many of ``wanted`` have a ``registered`` event since ``since``."""
    seen: set[str] = set()
    cursor: str | None = None
    while True:
        query = f"kind=registered&limit=1000&since={since}"
        if cursor:
            query += f"&cursor={cursor}"
        body = json.loads(get(f"{base}/history?{query}", bearer(token)).body)
        seen.update(e["endpoint"] for e in body["events"] if e["endpoint"] in wanted)
        cursor = body["next_cursor"]
        if cursor is None:
            return len(seen)


def registration_storm(
    loop: LoopThread,
    base: str,
    token: str,
    sip_port: int,
    users: list[str],
    *,
    ari: Ari | None = None,
) -> StormResult:
    result = StormResult(phones=len(users))
    result.at_rest, result.ari_at_rest = _sample_at_rest(base, token, users, 3.0, ari)
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1)) + "Z"
    stop = threading.Event()
    reads: tuple[list[float], list[float]] = ([], [])
    reader = threading.Thread(
        target=_reads, args=(base, token, users, stop, reads), kwargs={"ari": ari}, daemon=True
    )
    reader.start()
    started = time.perf_counter()
    try:
        result.failed = loop.run(_register_all(users, sip_port), timeout=300)
    finally:
        result.seconds = time.perf_counter() - started
        stop.set()
        reader.join(10)
    result.during = Stats(sorted(reads[0]))
    result.ari_during = Stats(sorted(reads[1]))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result.recorded = _recorded_since(base, token, since, set(users))
        if result.recorded >= len(users) - result.failed:
            break
        time.sleep(1.0)
    return result
