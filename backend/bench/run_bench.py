"""ISPBX Manager benchmark: the service against Asterisk's own ARI, on the same lab, in one run.

    cd backend && python -m bench.run_bench          # or: make bench

Settings (environment):
  BENCH_ENDPOINTS        endpoint counts to run, comma-separated (default "5000,10000")
  BENCH_LIST_SAMPLES     timed GET /endpoints vs /ari/endpoints pairs (default 200)
  BENCH_SINGLE_SAMPLES   timed GET /endpoints/{ext} vs /ari/endpoints/PJSIP/{ext} pairs (1000)
  BENCH_REGISTER_ROUNDS  REGISTER → visible rounds (default 20)
  BENCH_POLL_SECONDS     duration of the 304-share polling client (default 20)
  BENCH_KEEP_LOGS        keep the service log directory (default: removed on success)
  BENCH_SERVICE_DIR      a backend/ directory whose src/main.py to run instead (e.g. a patched copy)
  BENCH_EDGE_SAMPLES     timed GET /endpoints/{ext} pairs, edge limits on vs off (default 1000)

For every N it boots a lab Asterisk with N endpoints (non-ASCII caller IDs), starts the real
service (``python src/main.py``) with its AMI traffic going through a counting proxy, waits for the
first full sync and the detail prefetch, then measures. Service and ARI requests are interleaved
(ABBA order) so both see the same machine state. Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import document_bench, edge_cost, history_bench, manage_bench
from bench.amiproxy import AmiCountingProxy, LoopThread
from bench.client import (
    CLIENT_DESCRIPTION,
    FloorServer,
    Reply,
    Stats,
    basic,
    bearer,
    get,
)
from bench.metrics import MetricsFigures, measure_metrics, report_lines
from bench.storm import Ari, StormResult, registration_storm
from ispbx.ami import AmiClient
from ispbx_lab.lab import (
    AMI_SECRET,
    AMI_USERNAME,
    ARI_PASSWORD,
    ARI_USERNAME,
    Lab,
    LabUnavailable,
    ensure_rootfs,
    free_port,
    generate_pjsip,
)
from ispbx_lab.sipphone import SipPhone

BACKEND = Path(os.environ.get("BENCH_SERVICE_DIR") or Path(__file__).resolve().parents[1])
TOKEN = "bench-admin-token-0001"  # bench-only credential for the throw-away service
FIRST = 1000
ONLINE_WORDS = {"Not in use", "In use", "Busy", "Ringing", "Ring+Inuse", "On Hold"}
NAMES = (
    "Jürgen Müller",
    "Zoë Ørsted",
    "Łukasz Żółkiewski",
    "Дмитрий Иванов",
    "José Núñez",
    "Çağla Şahin",
    "Søren Kierkegård",
    "Αλέξανδρος Παππάς",
    "李雷",
    "Ngô Bảo Châu",
)
POLL_INTERVAL = 0.005
CHURN_INTERVAL = 2.5
CHURN_PHONES = 4
STORM_PHONES = int(os.environ.get("BENCH_STORM_PHONES", "5000"))


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


# -- the service ----------------------------------------------------------------------------------


class Service:
    """``python src/main.py`` on a free loopback port, in its own session (stopped by pid)."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "service.log"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "ISPBX_HTTP_HOST": "127.0.0.1",
            "ISPBX_HTTP_PORT": str(self.port),
            "ISPBX_API_TOKENS": f"admin:{TOKEN}",
            "ISPBX_TOKEN_FILE": str(workdir / "admin-token"),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.started_at = time.perf_counter()
            self.process = subprocess.Popen(
                [sys.executable, "src/main.py"],
                cwd=BACKEND,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return get(self.base + path, {**bearer(TOKEN), **(headers or {})})

    def health(self) -> dict[str, Any]:
        reply = get(self.base + "/health", timeout=5)
        result: dict[str, Any] = json.loads(reply.body)
        return result

    def rss(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in kB."""
        fields = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in {"VmRSS", "VmHWM"}:
                fields[key] = int(value.split()[0])
        return fields["VmRSS"], fields["VmHWM"]

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


def wait_until(check: Callable[[], Any], timeout: float, what: str, service: Service) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"the service exited while waiting for {what}; see its log")
        try:
            result = check()
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        else:
            if result:
                return result
        time.sleep(0.02)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")


# -- measurements ---------------------------------------------------------------------------------


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def expect(reply: Reply, status: int, what: str) -> Reply:
    if reply.status != status:
        raise RuntimeError(f"{what}: HTTP {reply.status} (expected {status}): {reply.body[:200]!r}")
    return reply


def single(url: str, headers: dict[str, str], samples: int, warmup: int) -> Stats:
    with no_gc():
        for _ in range(warmup):
            expect(get(url, headers), 200, url)
        return Stats([expect(get(url, headers), 200, url).seconds for _ in range(samples)])


Request = tuple[str, dict[str, str]]


def paired(make: Callable[[int], tuple[Request, Request]], samples: int, warmup: int) -> Pair:
    """Interleaved A/B samples (ABBA order); ``make(i)`` gives both requests of sample i."""
    a: list[float] = []
    b: list[float] = []
    sizes = [0, 0]
    with no_gc():
        for i in range(-warmup, samples):
            (url_a, head_a), (url_b, head_b) = make(i)
            if i % 2:
                reply_b = expect(get(url_b, head_b), 200, url_b)
                reply_a = expect(get(url_a, head_a), 200, url_a)
            else:
                reply_a = expect(get(url_a, head_a), 200, url_a)
                reply_b = expect(get(url_b, head_b), 200, url_b)
            if i >= 0:
                a.append(reply_a.seconds)
                b.append(reply_b.seconds)
                sizes = [len(reply_a.body), len(reply_b.body)]
    return Pair(Stats(a), Stats(b), sizes[0], sizes[1])


@dataclass
class Pair:
    service: Stats
    ari: Stats
    service_bytes: int
    ari_bytes: int

    @property
    def ratio(self) -> float:
        return self.service.median / self.ari.median


def actions_between(before: Counter[str], after: Counter[str]) -> Counter[str]:
    diff = Counter(after)
    diff.subtract(before)
    return +diff


def without_ping(counts: Counter[str]) -> int:
    return sum(v for k, v in counts.items() if k.lower() != "ping")


def pings(counts: Counter[str]) -> int:
    return sum(v for k, v in counts.items() if k.lower() == "ping")


@dataclass
class Result:
    endpoints: int
    asterisk: str = ""
    lab_boot: float = 0.0
    service_ready: float = 0.0
    sync_seconds: float = 0.0
    sync_wall: float = 0.0
    prefetch_seconds: float = 0.0
    prefetch_wall: float = 0.0
    startup_actions: Counter[str] = field(default_factory=Counter)
    rss_kb: int = 0
    hwm_kb: int = 0
    floor: Stats | None = None
    root: Stats | None = None
    list_pair: Pair | None = None
    gzip_list: Stats | None = None
    gzip_bytes: int = 0
    single_pair: Pair | None = None
    list_actions: Counter[str] = field(default_factory=Counter)
    single_actions: Counter[str] = field(default_factory=Counter)
    latency_seconds: float = 0.0
    register_visible: list[float] = field(default_factory=list)
    register_from_send: list[float] = field(default_factory=list)
    register_online: list[float] = field(default_factory=list)
    unregister_gone: list[float] = field(default_factory=list)
    register_actions: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    polls_304: int = 0
    poll_changes: int = 0
    poll_bytes: int = 0
    naive_seconds: float = 0.0
    naive_connect: float = 0.0
    reload_seconds: float = 0.0
    refresh_visible: float = 0.0
    refresh_actions: Counter[str] = field(default_factory=Counter)
    storm: StormResult | None = None
    manage: manage_bench.ManageResult | None = None
    edge: edge_cost.EdgeCost | None = None
    wall: float = 0.0
    metrics: MetricsFigures | None = None


def contacts_and_state(reply: Reply) -> tuple[list[Any], str]:
    body = json.loads(reply.body)
    details = body.get("details") or {}
    endpoint = details.get("endpoint") or {}
    return details.get("contacts") or [], str(endpoint.get("devicestate", ""))


def register_rounds(
    loop: LoopThread, service: Service, lab: Lab, proxy: AmiCountingProxy, result: Result
) -> None:
    rounds = env_int("BENCH_REGISTER_ROUNDS", 20)
    before = proxy.counts()
    for i in range(rounds):
        ext = str(FIRST + result.endpoints - 1 - i)
        phone = SipPhone(ext, f"pw{ext}", registrar=("127.0.0.1", lab.sip_port))
        loop.run(phone.open())
        try:
            times: dict[str, float] = {}

            async def register(p: SipPhone = phone, t: dict[str, float] = times) -> None:
                t["sent"] = time.perf_counter()
                await p.register(expires=300)
                t["ok"] = time.perf_counter()

            future = loop.submit(register())
            visible = online = None
            deadline = time.perf_counter() + 10
            while (visible is None or online is None) and time.perf_counter() < deadline:
                reply = expect(service.get(f"/endpoints/{ext}"), 200, "GET /endpoints/{ext}")
                contacts, state = contacts_and_state(reply)
                now = time.perf_counter()
                if visible is None and contacts:
                    visible = now
                if online is None and state in ONLINE_WORDS:
                    online = now
                time.sleep(POLL_INTERVAL)
            future.result(10)
            if visible is None:
                raise RuntimeError(f"REGISTER of {ext} not visible in GET /endpoints/{ext} in 10 s")
            result.register_visible.append(visible - times["ok"])
            result.register_from_send.append(visible - times["sent"])
            if online is not None:
                result.register_online.append(online - times["ok"])
            loop.run(phone.unregister())
            gone_from = time.perf_counter()
            while time.perf_counter() < gone_from + 10:
                contacts, _ = contacts_and_state(service.get(f"/endpoints/{ext}"))
                if not contacts:
                    result.unregister_gone.append(time.perf_counter() - gone_from)
                    break
                time.sleep(POLL_INTERVAL)
        finally:
            loop.run(phone.close())
    result.register_actions = actions_between(before, proxy.counts())


def poll_304(loop: LoopThread, service: Service, lab: Lab, result: Result) -> None:
    """A dashboard polling GET /endpoints every second while phones come and go."""
    seconds = env_int("BENCH_POLL_SECONDS", 20)
    phones = [
        SipPhone(str(FIRST + 10 + k), f"pw{FIRST + 10 + k}", registrar=("127.0.0.1", lab.sip_port))
        for k in range(CHURN_PHONES)
    ]
    changes = 0

    async def churn() -> None:
        nonlocal changes
        end = time.monotonic() + seconds
        k = 0
        while time.monotonic() < end:
            await asyncio.sleep(CHURN_INTERVAL)
            phone = phones[k % len(phones)]
            await (phone.unregister() if phone.registered else phone.register(expires=300))
            changes += 1
            k += 1

    for phone in phones:
        loop.run(phone.open())
    try:
        headers = {"Accept-Encoding": "gzip"}
        first = expect(service.get("/endpoints", headers), 200, "GET /endpoints")
        etag = first.headers.get("etag", "")
        future = loop.submit(churn())
        started = time.perf_counter()
        for k in range(1, seconds + 1):
            time.sleep(max(0.0, started + k - time.perf_counter()))
            reply = service.get("/endpoints", {**headers, "If-None-Match": etag})
            result.polls += 1
            result.poll_bytes += len(reply.body)
            if reply.status == 304:
                result.polls_304 += 1
            else:
                expect(reply, 200, "GET /endpoints (poll)")
                etag = reply.headers.get("etag", etag)
        future.result(seconds + 30)
        result.poll_changes = changes
    finally:
        for phone in phones:
            with contextlib.suppress(Exception):
                if phone.registered:
                    loop.run(phone.unregister())
            loop.run(phone.close())


def targeted_refresh(
    service: Service, lab: Lab, proxy: AmiCountingProxy, result: Result, names: dict[int, str]
) -> None:
    """Change one endpoint's caller ID in pjsip.conf, ``module reload res_pjsip.so``, and time
    until GET /endpoints/{ext} shows it; count the AMI actions the reload set off."""
    ext = FIRST + result.endpoints // 2
    renamed = f"Renamed {ext}"
    time.sleep(1.05)  # Asterisk skips a reload when the file's mtime second did not change
    changed = {**names, ext: renamed}
    lab.write_pjsip({"pjsip.conf": generate_pjsip(result.endpoints, first=FIRST, names=changed)})
    before = proxy.counts()
    started = time.perf_counter()
    lab.reload_pjsip()
    result.reload_seconds = time.perf_counter() - started

    def shows_it() -> bool:
        body = json.loads(service.get(f"/endpoints/{ext}").body)
        return renamed in (body["details"]["endpoint"].get("callerid") or "")

    wait_until(shows_it, 30, "the changed caller ID", service)
    result.refresh_visible = time.perf_counter() - started
    time.sleep(1.0)  # anything else the reload set off is on the wire by now
    result.refresh_actions = actions_between(before, proxy.counts())


async def naive(lab: Lab, names: list[str], result: Result) -> None:
    """The seed's way: a fresh AMI connection, then PJSIPShowEndpoint for each endpoint in turn."""
    started = time.perf_counter()
    client = AmiClient("127.0.0.1", lab.ami_port, AMI_USERNAME, AMI_SECRET, action_timeout=10)
    await client.connect()
    result.naive_connect = time.perf_counter() - started
    try:
        for name in names:
            await client.list_action({"Action": "PJSIPShowEndpoint", "Endpoint": name})
    finally:
        result.naive_seconds = time.perf_counter() - started
        await client.close()


def measure_latencies(
    service: Service, lab: Lab, proxy: AmiCountingProxy, floor: FloorServer, result: Result
) -> None:
    list_samples = env_int("BENCH_LIST_SAMPLES", 200)
    single_samples = env_int("BENCH_SINGLE_SAMPLES", 1000)
    ari = f"http://127.0.0.1:{lab.http_port}/ari"
    ari_auth = basic(ARI_USERNAME, ARI_PASSWORD)
    auth = bearer(TOKEN)
    t = time.perf_counter()
    result.floor = single(floor.url, {}, 1000, 100)
    result.root = single(service.base + "/", {}, 1000, 100)

    before = proxy.counts()
    result.list_pair = paired(
        lambda _i: ((service.base + "/endpoints", auth), (ari + "/endpoints", ari_auth)),
        list_samples,
        max(10, list_samples // 10),
    )
    result.list_actions = actions_between(before, proxy.counts())
    gz = {**auth, "Accept-Encoding": "gzip"}
    result.gzip_list = single(service.base + "/endpoints", gz, list_samples, 10)
    result.gzip_bytes = len(get(service.base + "/endpoints", gz).body)

    rng = random.Random(4)
    exts = [str(FIRST + rng.randrange(result.endpoints)) for _ in range(single_samples + 1000)]

    def single_request(i: int) -> tuple[Request, Request]:
        ext = exts[i]
        return (
            (f"{service.base}/endpoints/{ext}", auth),
            (f"{ari}/endpoints/PJSIP/{ext}", ari_auth),
        )

    before = proxy.counts()
    result.single_pair = paired(single_request, single_samples, max(100, single_samples // 10))
    result.single_actions = actions_between(before, proxy.counts())
    result.latency_seconds = time.perf_counter() - t


# -- one run -------------------------------------------------------------------------------------


def run_one(n: int, loop: LoopThread, floor: FloorServer, *, storm: bool = False) -> Result:
    result = Result(endpoints=n)
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix=f"ispbx-bench-{n}-"))
    names = {FIRST + i: f"{NAMES[i % len(NAMES)]} {FIRST + i}" for i in range(n)}
    lab = Lab(
        name=f"bench-{os.getpid()}-{n}",
        ami_port=free_port(),
        sip_port=free_port(socket.SOCK_DGRAM),
        http_port=free_port(),
        pjsip_files={"pjsip.conf": generate_pjsip(n, first=FIRST, names=names)},
    )
    proxy = AmiCountingProxy(lab.ami_port)
    service: Service | None = None
    ok = False
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lab.remove)
        progress(f"N={n}: booting the lab Asterisk ({lab.name})")
        t = time.perf_counter()
        lab.start()
        result.lab_boot = time.perf_counter() - t
        result.asterisk = lab.cli("core show version").stdout.split()[1]
        loop.run(proxy.start())
        cleanup.callback(lambda: loop.run(proxy.stop()))

        env = {**lab.service_env(), "ISPBX_AMI_PORT": str(proxy.port)}
        service = Service(env, workdir)
        cleanup.callback(service.stop)
        progress(f"N={n}: starting the service on {service.base} (AMI via proxy :{proxy.port})")
        service.start()
        wait_until(lambda: service.get("/").status == 200, 60, "the service to answer", service)
        result.service_ready = time.perf_counter() - service.started_at
        health = wait_until(
            lambda: (h := service.health())["inventory"]["sync_seconds"] is not None and h,
            120,
            "the first full sync",
            service,
        )
        result.sync_wall = time.perf_counter() - service.started_at
        result.sync_seconds = health["inventory"]["sync_seconds"]
        progress(f"N={n}: first full sync {result.sync_seconds:.2f} s; waiting for the prefetch")
        health = wait_until(
            lambda: (h := service.health())["inventory"]["prefetch_seconds"] is not None and h,
            600,
            "the detail prefetch",
            service,
        )
        result.prefetch_wall = time.perf_counter() - service.started_at
        result.prefetch_seconds = health["inventory"]["prefetch_seconds"]
        if health["inventory"]["endpoints"] != n:
            raise RuntimeError(
                f"service sees {health['inventory']['endpoints']} endpoints, not {n}"
            )
        time.sleep(1.0)  # let the last publish settle
        result.startup_actions = proxy.counts()
        result.rss_kb, result.hwm_kb = service.rss()
        progress(f"N={n}: prefetch {result.prefetch_seconds:.2f} s; measuring latencies")

        measure_running(
            loop, floor, service=service, lab=lab, proxy=proxy, result=result, names=names
        )
        if storm:
            measure_writes_and_storm(loop, service, lab, proxy, result)
        result.wall = time.perf_counter() - began
        ok = True
    if ok and not os.environ.get("BENCH_KEEP_LOGS"):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        progress(f"N={n}: service log kept in {workdir}")
    return result


def measure_writes_and_storm(
    loop: LoopThread, service: Service, lab: Lab, proxy: AmiCountingProxy, result: Result
) -> None:
    n = result.endpoints
    progress(f"N={n}: managing endpoints (PATCH, create, import of 1,000)")
    result.manage = manage_bench.run(service.base, TOKEN, lab, proxy, str(FIRST + 1))
    phones = [str(FIRST + i) for i in range(min(n, STORM_PHONES))]
    progress(f"N={n}: registration storm of {len(phones)} phones")
    ari = Ari(f"http://127.0.0.1:{lab.http_port}/ari", basic(ARI_USERNAME, ARI_PASSWORD))
    result.storm = registration_storm(loop, service.base, TOKEN, lab.sip_port, phones, ari=ari)


def measure_running(
    loop: LoopThread,
    floor: FloorServer,
    *,
    service: Service,
    lab: Lab,
    proxy: AmiCountingProxy,
    result: Result,
    names: dict[int, str],
) -> None:
    """Everything measured once the service is synced and prefetched."""
    n = result.endpoints
    measure_latencies(service, lab, proxy, floor, result)
    progress(f"N={n}: REGISTER → visible")
    register_rounds(loop, service, lab, proxy, result)
    progress(f"N={n}: polling client (304 share)")
    poll_304(loop, service, lab, result)
    progress(f"N={n}: one endpoint changed + module reload res_pjsip.so")
    targeted_refresh(service, lab, proxy, result, names)
    progress(f"N={n}: the seed's naive approach (PJSIPShowEndpoint x {n})")
    asyncio.run(naive(lab, [str(FIRST + i) for i in range(n)], result))
    progress(f"N={n}: the HTTP edge's limits: two fresh services, with and without them")
    edge_env = {**service.env, "ISPBX_AMI_PORT": str(lab.ami_port)}
    exts = [str(FIRST + i) for i in range(n)]
    with no_gc():
        result.edge = edge_cost.measure(edge_env, TOKEN, exts, service.log_path.parent)
    progress(f"N={n}: GET /metrics, and the read path while scraping every 5 s")
    result.metrics = measure_metrics(service.base, TOKEN, [str(FIRST + i) for i in range(n)])


# -- report --------------------------------------------------------------------------------------


def pct(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    median = Stats(ordered).median
    return f"median {ms(median)} ms (min {ms(ordered[0])}, max {ms(ordered[-1])}, n={len(values)})"


def report(result: Result) -> list[str]:
    r = result
    assert r.floor and r.root and r.list_pair and r.single_pair and r.gzip_list
    lp, sp = r.list_pair, r.single_pair
    n_list, n_single = len(lp.service.samples), len(sp.service.samples)
    list_req = n_list
    single_req = n_single
    startup = ", ".join(f"{k} {v}" for k, v in sorted(r.startup_actions.items()))
    reg = r.register_actions
    out = [
        f"=== {r.endpoints:,} endpoints " + "=" * 70,
        f"Asterisk {r.asterisk}; lab boot {r.lab_boot:.2f} s; this run took {r.wall:.0f} s",
        "",
        "Start-up (service process start = t0)",
        f"  service answers GET /                     {r.service_ready:8.2f} s",
        f"  first full sync (bulk lists), /health     {r.sync_seconds:8.2f} s"
        f"   (t0 → synced: {r.sync_wall:.2f} s)",
        f"  detail prefetch, /health prefetch_seconds {r.prefetch_seconds:8.2f} s"
        f"   (t0 → prefetch done: {r.prefetch_wall:.2f} s)",
        f"  AMI actions until then: {startup}",
        f"  service RSS after prefetch                {r.rss_kb / 1024:8.1f} MB"
        f"   (peak VmHWM {r.hwm_kb / 1024:.1f} MB)",
        "",
        f"Latency, ms — client: {CLIENT_DESCRIPTION}.",
        "Service and ARI samples interleaved (ABBA); ratio = service median / ARI median.",
        "",
        f"  {'request':<44}{'median':>9}{'p95':>9}{'bytes':>10}{'samples':>9}",
        f"  {'client floor: http.server, own process':<44}{ms(r.floor.median):>9}"
        f"{ms(r.floor.p95):>9}{2:>10}{len(r.floor.samples):>9}",
        f"  {'service GET / (trivial FastAPI route)':<44}{ms(r.root.median):>9}"
        f"{ms(r.root.p95):>9}{'':>10}{len(r.root.samples):>9}",
        "",
        f"  {'':<24}{'service':>18}{'ARI':>20}{'':>4}{'ratio':>8}",
        f"  {'':<24}{'median':>9}{'p95':>9}{'median':>10}{'p95':>9}{'':>4}{'(median)':>8}",
        f"  {'GET /endpoints':<24}{ms(lp.service.median):>9}{ms(lp.service.p95):>9}"
        f"{ms(lp.ari.median):>10}{ms(lp.ari.p95):>9}{'':>4}{lp.ratio:>7.2f}x",
        f"  {'GET /endpoints/{ext}':<24}{ms(sp.service.median):>9}{ms(sp.service.p95):>9}"
        f"{ms(sp.ari.median):>10}{ms(sp.ari.p95):>9}{'':>4}{sp.ratio:>7.2f}x",
        f"  (list: service {lp.service_bytes:,} bytes vs ARI {lp.ari_bytes:,} bytes per answer,"
        f" {n_list} pairs; single: {n_single} pairs, random extensions)",
        f"  (GET /endpoints with Accept-Encoding: gzip: median {ms(r.gzip_list.median)} ms,"
        f" p95 {ms(r.gzip_list.p95)} ms, {r.gzip_bytes:,} bytes)",
        "  ARI: GET /ari/endpoints and GET /ari/endpoints/PJSIP/{ext}, HTTP basic auth;"
        " service: Bearer token (admin)",
        "",
        "AMI actions sent per HTTP request (counting proxy between service and Asterisk)",
        f"  GET /endpoints        {without_ping(r.list_actions) / list_req:.3f}"
        f"  ({without_ping(r.list_actions)} actions in {list_req} requests + warm-up;"
        f" Ping keepalives meanwhile: {pings(r.list_actions)})",
        f"  GET /endpoints/{{ext}}  {without_ping(r.single_actions) / single_req:.3f}"
        f"  ({without_ping(r.single_actions)} actions in {single_req} requests + warm-up;"
        f" Ping keepalives meanwhile: {pings(r.single_actions)})",
        "",
        "REGISTER → visible in GET /endpoints/{ext}"
        f" (polled every {POLL_INTERVAL * 1000:.0f} ms)",
        f"  from the REGISTER's 200 OK     {pct(r.register_visible)}",
        f"  from the first REGISTER sent   {pct(r.register_from_send)}",
        f"  device state online            {pct(r.register_online)}",
        f"  un-REGISTER → contact gone     {pct(r.unregister_gone)}",
        "  AMI actions meanwhile: "
        + (", ".join(f"{k} {v}" for k, v in sorted(reg.items())) or "none"),
        "",
        f"Polling client: GET /endpoints every 1 s with If-None-Match (gzip) for {r.polls} s,"
        f" {CHURN_PHONES} phones toggling",
        f"  registration every {CHURN_INTERVAL:g} s ({r.poll_changes} changes):"
        f" 304 share {r.polls_304}/{r.polls} = {100 * r.polls_304 / max(1, r.polls):.0f} %,"
        f" {r.poll_bytes:,} body bytes received",
        "",
        "One endpoint's caller ID changed in pjsip.conf, then module reload res_pjsip.so",
        f"  Asterisk's own reload (asterisk -rx, until it returns)  {r.reload_seconds:.2f} s",
        f"  reload start → change visible in GET /endpoints/{{ext}}  {r.refresh_visible:.2f} s"
        f" ({r.refresh_visible / max(r.reload_seconds, 1e-9):.2f}x Asterisk's reload)",
        f"  AMI actions it set off: {without_ping(r.refresh_actions)} ("
        + ", ".join(f"{k} {v}" for k, v in sorted(r.refresh_actions.items()) if k != "Ping")
        + f"; before the targeted refresh: 5 lists + {r.endpoints:,} PJSIPShowEndpoint)",
        "",
        *(r.manage.lines() if r.manage else []),
        *(r.storm.lines() if r.storm else []),
        "The seed's naive GET /endpoints: fresh AMI connection + PJSIPShowEndpoint per endpoint",
        f"  {r.naive_seconds:.2f} s for {r.endpoints:,} endpoints (connect+login"
        f" {r.naive_connect * 1000:.1f} ms, {r.naive_seconds / r.endpoints * 1000:.2f} ms/endpoint)"
        f" = {r.naive_seconds / lp.service.median:,.0f}x the service's GET /endpoints median",
        "",
    ]
    if r.edge is not None:
        e = r.edge
        out += [
            "HTTP edge limits (ispbx/edge.py) vs uvicorn's plain httptools protocol: two fresh"
            f" services on the same lab, interleaved, {len(e.guarded.samples)} pairs",
            f"  GET /endpoints/{{ext}} median {ms(e.guarded.median)} ms with the limits,"
            f" {ms(e.plain.median)} ms without: {e.percent:+.1f} %"
            f" (p95 {ms(e.guarded.p95)} vs {ms(e.plain.p95)} ms)",
            "",
        ]
    return out + report_lines(r.metrics)


@dataclass
class Target:
    figure: str
    target: str
    applies_to: int | None  # None: every N
    value: Callable[[Result], str]
    passed: Callable[[Result], bool]


TARGETS = [
    Target(
        "GET /endpoints median vs ARI list",
        "≤ 0.5 x ARI",
        5000,
        lambda r: f"{r.list_pair.ratio:.2f} x" if r.list_pair else "-",
        lambda r: r.list_pair is not None and r.list_pair.ratio <= 0.5,
    ),
    Target(
        "GET /endpoints/{ext} median vs ARI single",
        "≤ 2.5 x ARI",
        None,
        lambda r: f"{r.single_pair.ratio:.2f} x" if r.single_pair else "-",
        lambda r: r.single_pair is not None and r.single_pair.ratio <= 2.5,
    ),
    Target(
        "first full sync (bulk lists)",
        "≤ 3 s",
        5000,
        lambda r: f"{r.sync_seconds:.2f} s",
        lambda r: r.sync_seconds <= 3.0,
    ),
    Target(
        "REGISTER → visible (median of 200 OK → API)",
        "≤ 1 s",
        None,
        lambda r: (
            f"{Stats(r.register_visible).median * 1000:.0f} ms" if r.register_visible else "-"
        ),
        lambda r: bool(r.register_visible) and Stats(r.register_visible).median <= 1.0,
    ),
    Target(
        "AMI actions per GET /endpoints",
        "0",
        None,
        lambda r: f"{without_ping(r.list_actions)}",
        lambda r: without_ping(r.list_actions) == 0,
    ),
    Target(
        "AMI actions, one endpoint edited + reload",
        "≤ 20",
        None,
        lambda r: f"{without_ping(r.refresh_actions)}",
        lambda r: 0 < without_ping(r.refresh_actions) <= 20,
    ),
    Target(
        "PATCH one endpoint → confirmed (median)",
        "≤ 1.0 s",
        5000,
        lambda r: f"{manage_median(r, 'patch'):.2f} s" if r.manage else "-",
        lambda r: r.manage is not None and manage_median(r, "patch") <= 1.0,
    ),
    Target(
        "POST create → in_asterisk in the list",
        "≤ 1.0 s",
        5000,
        lambda r: f"{manage_median(r, 'create_visible'):.2f} s" if r.manage else "-",
        lambda r: r.manage is not None and manage_median(r, "create_visible") <= 1.0,
    ),
    Target(
        "import 1,000 into 5,000 (one reload)",
        "≤ 5 s",
        5000,
        lambda r: f"{r.manage.import_seconds:.2f} s/{r.manage.import_reloads}" if r.manage else "-",
        lambda r: (
            r.manage is not None and r.manage.import_seconds <= 5.0 and r.manage.import_reloads == 1
        ),
    ),
    Target(
        "AMI actions per single-endpoint write",
        "≤ 10",
        5000,
        lambda r: f"{without_ping(r.manage.actions_per_write)}" if r.manage else "-",
        lambda r: r.manage is not None and without_ping(r.manage.actions_per_write) <= 10,
    ),
    Target(
        "storm: every registration recorded",
        "all",
        None,
        lambda r: f"{r.storm.recorded}/{r.storm.phones - r.storm.failed}" if r.storm else "-",
        lambda r: r.storm is None or r.storm.recorded >= r.storm.phones - r.storm.failed,
    ),
    Target(
        "storm: GET /endpoints/{ext} p95 vs at rest",
        "≤ 2 x",
        None,
        lambda r: f"{storm_ratio(r):.2f} x" if r.storm else "-",
        lambda r: r.storm is None or storm_ratio(r) <= 2.0,
    ),
    Target(
        "GET /endpoints/{ext}: cost of edge limits",
        "≤ +10 %",
        None,
        lambda r: f"{r.edge.percent:+.1f} %" if r.edge else "-",
        lambda r: r.edge is not None and r.edge.percent <= 10.0,
    ),
    Target(
        "service RSS after prefetch",
        "≤ 150 MB",
        10000,
        lambda r: f"{r.rss_kb / 1024:.1f} MB",
        lambda r: r.rss_kb / 1024 <= 150,
    ),
]


def manage_median(result: Result, figure: str) -> float:
    values: list[float] = getattr(result.manage, figure, [])
    return statistics.median(values) if values else 0.0


def storm_ratio(result: Result) -> float:
    storm = result.storm
    if storm is None or storm.at_rest is None or storm.during is None:
        return 0.0
    return storm.during.p95 / storm.at_rest.p95


TARGETS += [
    Target(
        "GET /metrics (scrape) median",
        "≤ 50 ms",
        10000,
        lambda r: f"{r.metrics.scrape.median * 1000:.1f} ms" if r.metrics else "-",
        lambda r: r.metrics is not None and r.metrics.scrape.median <= 0.050,
    ),
    Target(
        "GET /endpoints/{ext} median, scraping every 5 s",
        "≤ +5 %",
        None,
        lambda r: f"{r.metrics.read_change * 100:+.1f} %" if r.metrics else "-",
        lambda r: r.metrics is not None and abs(r.metrics.read_change) <= 0.05,
    ),
]


def targets_table(results: list[Result]) -> list[str]:
    sizes = [r.endpoints for r in results]
    width = 16
    head = f"  {'figure':<44}{'target':<13}" + "".join(f"{f'N={s:,}':>{width}}" for s in sizes)
    lines = ["=== Targets " + "=" * 77, head]
    verdicts: list[bool] = []
    missing: list[str] = []
    for target in TARGETS:
        cells = []
        for r in results:
            value = target.value(r)
            if target.applies_to in (None, r.endpoints):
                passed = target.passed(r)
                verdicts.append(passed)
                cells.append(f"{value} {'PASS' if passed else 'FAIL'}")
            else:
                cells.append(f"{value} (info)")
        if target.applies_to is not None and target.applies_to not in sizes:
            missing.append(f"{target.figure} is judged at N={target.applies_to}")
        lines.append(
            f"  {target.figure:<44}{target.target:<13}" + "".join(f"{c:>{width}}" for c in cells)
        )
    lines.append("")
    for note in missing:
        size = note.split("=")[-1]
        lines.append(f"  not judged in this run: {note} (BENCH_ENDPOINTS={size} make bench)")
    failed = verdicts.count(False)
    lines.append(
        f"  {len(verdicts) - failed}/{len(verdicts)} judged targets met"
        + (f", {failed} FAILED" if failed else "")
    )
    return lines


def main() -> int:
    sizes = [int(s) for s in os.environ.get("BENCH_ENDPOINTS", "5000,10000").split(",") if s]
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        ensure_rootfs()
    except LabUnavailable as exc:
        print(f"bench: Asterisk lab unavailable: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    load_before = os.getloadavg()
    loop = LoopThread()
    floor = FloorServer()
    results: list[Result] = []
    try:
        storm_at = next((n for n in sizes if n >= STORM_PHONES), None)
        for n in sizes:
            results.append(run_one(n, loop, floor, storm=n == storm_at))
        progress("history database: 1,000,000 events (SQLite)")
        history_lines = history_bench.run()
        progress("config document: parse + edit + render of 10,000 endpoints")
        history_lines += ["", *document_bench.run()]
    except KeyboardInterrupt:
        print("bench: interrupted; lab and service stopped", file=sys.stderr)
        return 130
    finally:
        floor.stop()
        loop.stop()
    cpus = os.cpu_count()
    lines = [
        "",
        f"ISPBX Manager benchmark — {time.strftime('%Y-%m-%d %H:%M')}, Python"
        f" {platform.python_version()}, {platform.machine()}, {cpus} CPUs,"
        f" {platform.system()} {platform.release()}",
        "Lab: real Asterisk (chroot), pjsip.conf with N endpoints (endpoint + auth + aor each),"
        " caller IDs with non-ASCII names; everything on 127.0.0.1.",
        "Service AMI traffic passes a counting TCP proxy (bench process) to Asterisk.",
        f"Load average (1 min) before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f}"
        " — other work on this machine skews latencies.",
        "",
    ]
    for result in results:
        lines += report(result)
    lines += history_lines
    lines += targets_table(results)
    lines.append(f"  total bench time {time.perf_counter() - started:.0f} s")
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
