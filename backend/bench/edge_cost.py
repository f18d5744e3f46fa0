"""What the HTTP edge's limits (ispbx.edge) cost on the read path, for ``make bench``.

Two fresh service processes on the same lab, one as shipped (``src/main.py``, the limits on) and
one with uvicorn's plain httptools protocol (``bench.plain_service``); once both have prefetched,
``GET /endpoints/{ext}`` is timed on both, interleaved (ABBA), with the bench's one client (a new
connection per request). Both fresh, so neither has the other's history (heap, caches).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.client import Stats, bearer, get
from ispbx_lab.lab import free_port

BACKEND = Path(__file__).resolve().parents[1]


@dataclass
class EdgeCost:
    guarded: Stats
    plain: Stats

    @property
    def percent(self) -> float:
        return (self.guarded.median / self.plain.median - 1) * 100


GUARDED = ["src/main.py"]
PLAIN = ["-m", "bench.plain_service", "httptools"]


def start(
    command: list[str], env: dict[str, str], log_path: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**env, "ISPBX_HTTP_PORT": str(port), "PYTHONPATH": f"{BACKEND / 'src'}:{BACKEND}"}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, *command],
            cwd=BACKEND,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}"


def wait_prefetched(process: subprocess.Popen[bytes], base: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("a service for the edge's cost exited; see its log")
        try:
            health = json.loads(get(base + "/health", timeout=5).body)
            if health["inventory"]["prefetch_seconds"] is not None:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"a service for the edge's cost did not prefetch within {timeout:.0f} s")


def measure(env: dict[str, str], token: str, extensions: list[str], workdir: Path) -> EdgeCost:
    """``env``: the service settings (each process gets its own port)."""
    samples = int(os.environ.get("BENCH_EDGE_SAMPLES", "") or 1000)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        guarded_process, guarded_base = start(GUARDED, env, workdir / "edge-guarded.log")
        processes.append(guarded_process)
        process, plain_base = start(PLAIN, env, workdir / "edge-plain.log")
        processes.append(process)
        wait_prefetched(guarded_process, guarded_base, 600)
        wait_prefetched(process, plain_base, 600)
        auth = bearer(token)
        rng = random.Random(10)
        guarded: list[float] = []
        plain: list[float] = []
        for i in range(-max(100, samples // 10), samples):
            ext = rng.choice(extensions)
            pair = [(guarded_base, guarded), (plain_base, plain)]
            for base, into in pair if i % 2 else pair[::-1]:
                reply = get(f"{base}/endpoints/{ext}", auth)
                if reply.status != 200:
                    raise RuntimeError(f"GET /endpoints/{ext}: HTTP {reply.status}")
                if i >= 0:
                    into.append(reply.seconds)
        return EdgeCost(Stats(guarded), Stats(plain))
    finally:
        for running in processes:
            stop(running)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
