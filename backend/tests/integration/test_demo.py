"""``make demo`` as a new user meets it: in a terminal (a pty), stopped by Ctrl-C, SIGTERM or
SIGHUP, it stops the service, the phones and its lab Asterisk within 3 s, prints one line and
exits 0; while it runs, its phones answer a call placed with ``python -m ispbx_lab call``.

Each run uses a private lab name and free ports (never the default ones).
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ispbx_lab.lab import Lab, free_port
from tests.support import ADMIN_TOKEN, BACKEND, TEST_TOKENS, wait_for

STOP_WITHIN = 3.0
MAX_LINES_AFTER_STOP = 2  # the terminal's "^C" echo and the demo's one line


@dataclass
class DemoRun:
    """``python -m ispbx_lab demo`` under a pty, as in a terminal; output kept with times."""

    lab: Lab
    http_port: int
    pid: int = 0
    fd: int = -1
    output: list[tuple[float, bytes]] = field(default_factory=list)
    exit_status: int | None = None
    _reader: threading.Thread | None = None

    def start(self, token_file: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(BACKEND / "src"),  # ispbx_lab is not installed with the product
            "ISPBX_LAB_NAME": self.lab.name,
            "ISPBX_LAB_AMI_PORT": str(self.lab.ami_port),
            "ISPBX_LAB_SIP_PORT": str(self.lab.sip_port),
            "ISPBX_LAB_HTTP_PORT": str(self.lab.http_port),
            "ISPBX_HTTP_HOST": "127.0.0.1",
            "ISPBX_HTTP_PORT": str(self.http_port),
            "ISPBX_API_TOKENS": TEST_TOKENS,
            "ISPBX_TOKEN_FILE": str(token_file),
            "ISPBX_DATABASE_URL": f"sqlite+aiosqlite:///{token_file.parent / 'ispbx.db'}",
        }
        env.pop("ISPBX_CONFIG", None)
        pid, fd = pty.fork()
        if pid == 0:  # the child: a session leader with the pty as its terminal
            try:
                os.chdir(BACKEND)
                os.execve(sys.executable, [sys.executable, "-m", "ispbx_lab", "demo"], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EIO once the child side is closed
                return
            if not data:
                return
            self.output.append((time.monotonic(), data))

    def text(self, since: float = 0.0) -> str:
        return b"".join(d for t, d in list(self.output) if t >= since).decode(errors="replace")

    def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_status = os.waitstatus_to_exitcode(status)
                return self.exit_status
            time.sleep(0.01)
        return None

    def kill(self) -> None:
        """Stop the demo and what it started; the service runs in a session of its own, so a
        SIGKILL to the demo's group alone would leave it running."""
        if self.pid and self.exit_status is None:
            children = child_pids(self.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)  # the demo stops its service, phones and lab
            if self.wait_exit(8) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.wait_exit(5)
            for child in children:
                if alive(child):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(2)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def child_pids(parent: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
            if fields.get("PPid", "").strip() == str(parent):
                found.append(int(status.parent.name))
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def tcp_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def api_state(port: int, extension: str) -> str:
    import httpx

    response = httpx.get(
        f"http://127.0.0.1:{port}/endpoints/{extension}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=2,
    )
    state: str = response.json()["details"]["endpoint"]["devicestate"]
    return state


@contextlib.contextmanager
def demo(tmp_path: Path, tag: str) -> Iterator[DemoRun]:
    lab = Lab(
        name=f"test-{os.getpid()}-demo-{tag}",
        ami_port=free_port(),
        sip_port=free_port(socket.SOCK_DGRAM),
        http_port=free_port(),
    )
    run = DemoRun(lab, http_port=free_port())
    try:
        run.start(tmp_path / "admin-token")
        wait_for(lambda: "stops the service" in run.text(), 90, "the demo's banner")
        wait_for(lambda: api_state(run.http_port, "101") == "Not in use", 15, "phone 101 online")
        wait_for(lambda: api_state(run.http_port, "102") == "Not in use", 15, "phone 102 online")
        yield run
    finally:
        run.kill()
        lab.remove()


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sighup"])
def test_demo_stops_everything_quietly(rootfs: None, tmp_path: Path, how: str) -> None:
    with demo(tmp_path, how) as run:
        banner = run.text()
        assert f"127.0.0.1:{run.lab.sip_port} udp" in banner
        assert re.search(r"101/101pass\s+registered by the demo", banner)
        assert re.search(r"103/103pass\s+free", banner)
        assert "-m ispbx_lab call 103 101" in banner
        asterisk = run.lab.running_pid()
        assert asterisk is not None and alive(asterisk)
        service = [p for p in child_pids(run.pid) if b"src/main.py" in cmdline(p)]
        assert len(service) == 1, service

        sent = time.monotonic()
        if how == "ctrl-c":
            os.write(run.fd, b"\x03")  # the terminal sends SIGINT to the foreground group
        else:
            os.kill(run.pid, signal.SIGTERM if how == "sigterm" else signal.SIGHUP)
        code = run.wait_exit(10)
        took = time.monotonic() - sent
        time.sleep(0.1)  # the last output
        after = run.text(since=sent)
        print(f"\ndemo stop by {how}: {took:.2f} s; output after the signal: {after!r}")

        assert code == 0, after
        assert took <= STOP_WITHIN, took
        assert "Traceback" not in after
        lines = [line for line in after.replace("\r", "").split("\n") if line.strip()]
        assert 1 <= len(lines) <= MAX_LINES_AFTER_STOP, lines
        assert "demo stopped" in lines[-1]
        assert not alive(asterisk)
        assert not any(alive(pid) for pid in service)
        assert run.lab.running_pid() is None
        for port in (run.lab.ami_port, run.lab.http_port, run.http_port):
            assert not tcp_open(port), port
        assert not udp_bound(run.lab.sip_port)


def test_demo_phone_answers_a_call_from_the_command_line(rootfs: None, tmp_path: Path) -> None:
    with demo(tmp_path, "call") as run:
        env = {**os.environ, "ISPBX_LAB_SIP_PORT": str(run.lab.sip_port)}
        env["PYTHONPATH"] = str(BACKEND / "src")
        env["ISPBX_LAB_NAME"] = run.lab.name
        command = [sys.executable, "-m", "ispbx_lab", "call", "103", "101", "--seconds", "1.5"]
        caller = subprocess.Popen(
            command, cwd=BACKEND, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            wait_for(lambda: api_state(run.http_port, "101") == "Ringing", 5, "101 ringing")
            wait_for(lambda: api_state(run.http_port, "101") == "In use", 5, "101 in use")
            assert api_state(run.http_port, "103") == "In use"
            output, _ = caller.communicate(timeout=15)
        finally:
            if caller.poll() is None:
                caller.kill()
                caller.wait(5)
        text = output.decode()
        assert caller.returncode == 0, text
        assert "101 is ringing" in text and "answered" in text and "call ended" in text
        wait_for(lambda: api_state(run.http_port, "101") == "Not in use", 3, "101 free again")
        assert "phone 101: call from 103 ringing" in run.text()
        assert "phone 101: answered the call from 103" in run.text()


def test_building_the_lab_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first run is otherwise silent for a minute of debootstrap."""
    from ispbx_lab import lab as lab_module

    def fake_debootstrap(base: Path, suite: str, log: Path | None) -> str:
        root = base / "rootfs"
        (root / "usr" / "sbin").mkdir(parents=True, exist_ok=True)
        (root / "usr" / "sbin" / "asterisk").touch()
        (root / "etc").mkdir(exist_ok=True)
        (root / "etc" / "passwd").touch()
        return ""

    monkeypatch.setenv("ISPBX_LAB_CACHE", str(tmp_path))
    monkeypatch.setattr(lab_module.os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab_module.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(lab_module, "_debootstrap", fake_debootstrap)
    assert lab_module.ensure_rootfs() == tmp_path / "rootfs"
    assert capsys.readouterr().err == (
        f"building the Asterisk lab (once, ~1 min) in {tmp_path / 'rootfs'}…\n"
    )
    lab_module.ensure_rootfs()
    assert capsys.readouterr().err == ""


def test_the_banner_accounts_are_the_sample_pjsip_conf() -> None:
    from ispbx_lab.accounts import read_accounts
    from ispbx_lab.demo import call_command
    from ispbx_lab.lab import SAMPLE_PJSIP

    accounts, transports = read_accounts(SAMPLE_PJSIP)
    assert [(a.extension, a.username, a.password) for a in accounts] == [
        (n, n, f"{n}pass") for n in ("101", "102", "103", "104")
    ]
    assert [(t.protocol, t.bind) for t in transports] == [("udp", "127.0.0.1:5060")]
    assert call_command(Lab()).endswith(" -m ispbx_lab call 103 101")
    assert "ISPBX_LAB_SIP_PORT" not in call_command(Lab())
    other = call_command(Lab(name="x", sip_port=5070))
    assert other.startswith("ISPBX_LAB_NAME=x ISPBX_LAB_SIP_PORT=5070 ")
