"""The /metrics figures of ``make bench``: the cost of one scrape, and what scraping every 5 s does
to the read path.

The scraper runs in its own process (as Prometheus would), switched on and off through a pipe, so
its reads never compete with the measuring client for this process's GIL. The read benchmark
alternates 5 s phases without and with scraping in ABBA order (A B B A A B B A …; each B phase
starts with a scrape, so B phases see one scrape every 5 s), many of them, so that a steady drift
of the machine's load falls on both alike and its bursts average out.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from dataclasses import dataclass, field

from bench.client import Stats, bearer, get

SCRAPE_INTERVAL = 5.0
SCRAPE_SAMPLES = 30

SCRAPER = r"""
import os, select, sys, time, urllib.request
url, interval = sys.argv[1], float(sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
headers = {"Authorization": "Bearer " + os.environ["BENCH_METRICS_TOKEN"]}
on, due, scrapes = False, 0.0, 0
while True:
    timeout = max(0.0, due - time.monotonic()) if on else None
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if ready:
        word = sys.stdin.readline().strip()
        if word in ("", "quit"):
            break
        on = word == "on"
        due = time.monotonic()
        if not on:
            print(scrapes, flush=True)
        continue
    with opener.open(urllib.request.Request(url, headers=headers), timeout=30) as reply:
        reply.read()
    scrapes += 1
    due += interval
"""


@dataclass
class MetricsFigures:
    scrape: Stats
    body_bytes: int
    series: int
    reads_plain: list[float] = field(default_factory=list)
    reads_scraped: list[float] = field(default_factory=list)
    scrapes_during_reads: int = 0
    phases: int = 0

    @property
    def read_change(self) -> float:
        """Median of GET /endpoints/{ext} while scraping vs without, as a fraction (+0.02: 2 %)."""
        return Stats(self.reads_scraped).median / Stats(self.reads_plain).median - 1


def measure_scrape(base: str, token: str) -> tuple[Stats, int, int]:
    url, headers = f"{base}/metrics", bearer(token)
    for _ in range(3):
        get(url, headers)
    samples, body = [], b""
    for _ in range(SCRAPE_SAMPLES):
        reply = get(url, headers)
        if reply.status != 200:
            raise RuntimeError(f"GET /metrics: HTTP {reply.status}")
        samples.append(reply.seconds)
        body = reply.body
        time.sleep(0.05)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return Stats(samples), len(body), series


def measure_metrics(
    base: str, token: str, extensions: list[str], *, phases: int = 24, phase_seconds: float = 5.0
) -> MetricsFigures:
    scrape, size, series = measure_scrape(base, token)
    figures = MetricsFigures(scrape, size, series, phases=phases)
    scraper = subprocess.Popen(
        [sys.executable, "-c", SCRAPER, f"{base}/metrics", str(SCRAPE_INTERVAL)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"BENCH_METRICS_TOKEN": token, "PATH": "/usr/bin:/bin"},
    )
    assert scraper.stdin is not None and scraper.stdout is not None
    rng = random.Random(13)
    headers = bearer(token)
    try:
        for phase in range(phases):
            scraping = phase % 4 in (1, 2)  # A B B A
            if scraping:
                scraper.stdin.write("on\n")
                scraper.stdin.flush()
            into = figures.reads_scraped if scraping else figures.reads_plain
            end = time.perf_counter() + phase_seconds
            while time.perf_counter() < end:
                ext = extensions[rng.randrange(len(extensions))]
                reply = get(f"{base}/endpoints/{ext}", headers)
                if reply.status != 200:
                    raise RuntimeError(f"GET /endpoints/{ext}: HTTP {reply.status}")
                into.append(reply.seconds)
            if scraping:
                scraper.stdin.write("off\n")
                scraper.stdin.flush()
                figures.scrapes_during_reads = int(scraper.stdout.readline())  # running total
    finally:
        scraper.stdin.write("quit\n")
        scraper.stdin.flush()
        scraper.wait(10)
    return figures


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def report_lines(figures: MetricsFigures | None) -> list[str]:
    if figures is None:
        return []
    plain, scraped = Stats(figures.reads_plain), Stats(figures.reads_scraped)
    return [
        "GET /metrics (a metrics scrape, bearer token, no gzip)",
        f"  scrape                 median {ms(figures.scrape.median)} ms, p95"
        f" {ms(figures.scrape.p95)} ms, {figures.body_bytes:,} bytes, {figures.series:,} series"
        f" (n={len(figures.scrape.samples)})",
        f"  GET /endpoints/{{ext}}  median {ms(plain.median)} ms without scraping,"
        f" {ms(scraped.median)} ms while scraping every {SCRAPE_INTERVAL:g} s"
        f" ({figures.read_change * 100:+.1f} %); p95 {ms(plain.p95)} / {ms(scraped.p95)} ms",
        f"  ({len(plain.samples):,} + {len(scraped.samples):,} requests in {figures.phases}"
        f" phases in ABBA order, {figures.scrapes_during_reads} scrapes meanwhile)",
        "",
    ]
