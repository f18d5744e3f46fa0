"""Real calls through the lab dialplan, watched through the service.

Two registered phones: the project's own (``ispbx_lab.sipphone``) and SIPp from Debian's
``sip-tester`` package as a third-party peer (its scenarios are in ``sipp/``). SIPp's
registration is made for it, with Digest, from the port SIPp then listens on. Each call rings,
is answered and is hung up by the project's phone, and ``GET /endpoints/{ext}`` and ``/events``
must show every device-state change of both ends within 1 s of the SIP message that causes it
(the 180, the 200 and the BYE, timed at the project's phone).

The callee goes Ringing -> In use -> Not in use. The caller is In use from its INVITE on: Asterisk
puts the calling channel in state Ring, which its device state maps to "In use", not "Ringing".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ispbx_lab.lab import Lab, free_port
from ispbx_lab.sipphone import Call, ThreadedPhone, register_blocking, unregister_blocking
from tests.integration.conftest import running_lab, running_service
from tests.support import ADMIN_TOKEN, ServiceProcess, wait_for

SCENARIOS = Path(__file__).parent / "sipp"
RING_SECONDS = 1.5
TALK_SECONDS = 1.5
MAX_LATENCY = 1.0
EARLY = 0.2  # s a state may show before the message we time it by (the caller's In use)
POLL_INTERVAL = 0.02


@pytest.fixture(scope="module")
def sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        reason = "SIPp is not installed (apt-get install sip-tester)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def call_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("calls")


@pytest.fixture(scope="module")
def service(call_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    yield from running_service(call_lab, tmp_path_factory, prefetched=True)


# -- watching device states ------------------------------------------------------------------


@dataclass
class Seen:
    at: float  # time.monotonic() when the client had the answer
    extension: str
    state: str


@dataclass
class StateWatch:
    """Device states of some extensions as two clients see them, timestamped: one polls
    ``GET /endpoints/{ext}`` every 20 ms, the other reads ``/events``."""

    service: ServiceProcess
    extensions: tuple[str, ...]
    api: list[Seen] = field(default_factory=list)
    events: list[Seen] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _stream_open: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> StateWatch:
        for target in (self._poll, self._read_events):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        assert self._stream_open.wait(5), "the /events stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def _poll(self) -> None:
        with httpx.Client(
            base_url=self.service.base_url,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=2,
        ) as client:
            while not self._stop.is_set():
                for ext in self.extensions:
                    with contextlib.suppress(httpx.HTTPError):
                        body = client.get(f"/endpoints/{ext}").json()
                        state = body["details"]["endpoint"]["devicestate"]
                        self.api.append(Seen(time.monotonic(), ext, state))
                time.sleep(POLL_INTERVAL)

    def _read_events(self) -> None:
        """The SSE stream over HTTP/1.0 (no chunking), read with a short socket timeout so the
        thread notices the stop flag."""
        with socket.create_connection(("127.0.0.1", self.service.port), timeout=5) as sock:
            sock.sendall(
                f"GET /events HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {ADMIN_TOKEN}\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            sock.settimeout(0.1)
            buffer = b""
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                now = time.monotonic()
                buffer += data
                if not self._stream_open.is_set() and b"\r\n\r\n" in buffer:
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    assert b" 200 " in head.split(b"\r\n", 1)[0], head
                    self._stream_open.set()
                while b"\n\n" in buffer and self._stream_open.is_set():
                    block, _, buffer = buffer.partition(b"\n\n")
                    self._event(block.decode(), now)

    def _event(self, block: str, now: float) -> None:
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields.get("event") != "endpoint":
            return
        row = json.loads(fields["data"])
        if row.get("extension") in self.extensions:
            self.events.append(Seen(now, row["extension"], row["details"]["devicestate"]))

    def sequence(self, source: list[Seen], extension: str, since: float) -> list[str]:
        """The distinct states in the order seen (repeats collapsed)."""
        states: list[str] = []
        for seen in list(source):
            if seen.extension == extension and seen.at >= since and seen.state not in states[-1:]:
                states.append(seen.state)
        return states

    def first(self, source: list[Seen], extension: str, state: str, since: float) -> float | None:
        for seen in list(source):
            if seen.extension == extension and seen.at >= since and seen.state == state:
                return seen.at
        return None


def devicestate(service: ServiceProcess, extension: str) -> str:
    state: str = service.get(f"/endpoints/{extension}").json()["details"]["endpoint"]["devicestate"]
    return state


# -- SIPp --------------------------------------------------------------------------------------


@contextlib.contextmanager
def registered_for_sipp(lab: Lab, user: str, password: str) -> Iterator[int]:
    """Register ``user`` with a Contact on a free port (Digest, as a phone would), yield that
    port for SIPp to listen on, and remove the binding afterwards."""
    port = free_port(socket.SOCK_DGRAM)
    registrar = ("127.0.0.1", lab.sip_port)
    register_blocking(user, password, registrar=registrar, local_port=port, expires=120)
    try:
        yield port
    finally:
        with contextlib.suppress(Exception):  # the lab may be gone already
            unregister_blocking(user, password, registrar=registrar, local_port=port)


@contextlib.contextmanager
def run_sipp(
    binary: str, args: list[str], *, port: int, log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """SIPp on loopback for one call with short timeouts; always killed on the way out."""
    command = [
        binary,
        *args,
        "-i",
        "127.0.0.1",
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_port(socket.SOCK_DGRAM)),
        "-p",
        str(port),
        "-m",
        "1",
        "-l",
        "1",
        "-timeout",
        "20",
        "-timeout_error",
        "-recv_timeout",
        "15000",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(log_dir / "sipp-errors.log"),
        "-trace_msg",
        "-message_file",
        str(log_dir / "sipp-messages.log"),
    ]
    with (log_dir / "sipp.out").open("wb") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def sipp_log(log_dir: Path) -> str:
    parts = []
    for name in ("sipp-errors.log", "sipp-messages.log"):
        path = log_dir / name
        if path.exists():
            parts.append(f"--- {name}\n{path.read_text(errors='replace')[-4000:]}")
    return "\n".join(parts)


# -- checks ------------------------------------------------------------------------------------


def check_call_states(
    watch: StateWatch, *, callee: str, caller: str, call: Call, since: float
) -> dict[str, dict[str, float]]:
    """Assert both ends' device states and their latencies; return them (s) for the record."""
    assert call.ringing_at and call.answered_at and call.ended_at, call
    causes = {
        callee: [("Ringing", call.ringing_at), ("In use", call.answered_at)],
        caller: [("In use", call.ringing_at)],
    }
    latencies: dict[str, dict[str, float]] = {}
    for ext in (callee, caller):
        causes[ext].append(("Not in use", call.ended_at))
        expected = [state for state, _ in causes[ext]]
        for name, source in (("api", watch.api), ("events", watch.events)):
            seen = watch.sequence(source, ext, since)
            assert seen[-len(expected) :] == expected, (name, ext, seen)
            cursor = since  # each state is looked for after the one before it was seen
            for state, cause in causes[ext]:
                first = watch.first(source, ext, state, cursor)
                assert first is not None, (name, ext, state, seen)
                latency = first - cause
                latencies.setdefault(f"{ext} {state}", {})[name] = round(latency, 3)
                # The caller is In use from its INVITE, a moment before the callee's 180.
                assert -EARLY <= latency <= MAX_LATENCY, (name, ext, state, latency)
                cursor = first
    print(f"\ndevice-state latencies (s) after the SIP message, callee {callee}, caller {caller}:")
    for key, value in latencies.items():
        print(f"  {key:16} {value}")
    return latencies


def wait_settled(service: ServiceProcess, *extensions: str) -> None:
    for ext in extensions:
        wait_for(lambda e=ext: devicestate(service, e) == "Not in use", 5, f"{ext} not in use")


# -- the calls ---------------------------------------------------------------------------------


def test_sipp_calls_the_project_phone(
    call_lab: Lab, service: ServiceProcess, sipp: str, tmp_path: Path
) -> None:
    """SIPp as 103 (Digest-authenticated INVITE) calls 101, the project's phone, which rings,
    answers and hangs up; the dashboard's sources show both ends."""
    registrar = ("127.0.0.1", call_lab.sip_port)
    with (
        ThreadedPhone(
            "101",
            "101pass",
            registrar=registrar,
            ring_seconds=RING_SECONDS,
            unregister_on_exit=True,
        ) as phone,
        registered_for_sipp(call_lab, "103", "103pass") as sipp_port,
    ):
        phone.register(120)
        wait_settled(service, "101", "103")
        with StateWatch(service, ("101", "103")) as watch:
            since = time.monotonic()
            args = [f"127.0.0.1:{call_lab.sip_port}", "-sf", str(SCENARIOS / "uac_digest.xml")]
            args += ["-s", "101", "-key", "caller", "103", "-au", "103", "-ap", "103pass"]
            with run_sipp(sipp, args, port=sipp_port, log_dir=tmp_path) as process:
                call = phone.wait_for_call(10)
                assert phone.wait_answered(call, RING_SECONDS + 2), call
                assert call.remote_user == "103"
                assert call.remote_audio is not None and call.remote_audio.offers_pcmu()
                time.sleep(TALK_SECONDS)
                phone.hangup(call)
                assert process.wait(10) == 0, sipp_log(tmp_path)
            assert call.end_reason == "local BYE"
            wait_settled(service, "101", "103")
            time.sleep(0.3)  # let the event stream deliver the last change too
        check_call_states(watch, callee="101", caller="103", call=call, since=since)


def test_project_phone_calls_sipp(
    call_lab: Lab, service: ServiceProcess, sipp: str, tmp_path: Path
) -> None:
    """The project's phone as 101 calls 102, registered for SIPp, which rings for 1.5 s and
    answers; the project's phone hangs up."""
    registrar = ("127.0.0.1", call_lab.sip_port)
    with (
        ThreadedPhone("101", "101pass", registrar=registrar, unregister_on_exit=True) as phone,
        registered_for_sipp(call_lab, "102", "102pass") as sipp_port,
    ):
        phone.register(120)
        wait_settled(service, "101", "102")
        args = ["-sf", str(SCENARIOS / "uas_ringing.xml"), "-d", str(int(RING_SECONDS * 1000))]
        with (
            StateWatch(service, ("101", "102")) as watch,
            run_sipp(sipp, args, port=sipp_port, log_dir=tmp_path) as process,
        ):
            wait_for(lambda: port_in_use(sipp_port), 5, "SIPp to listen")
            since = time.monotonic()
            call = phone.call("102", answer_timeout=10)
            assert call.state == "active" and call.remote_audio is not None
            time.sleep(TALK_SECONDS)
            phone.hangup(call)
            assert process.wait(10) == 0, sipp_log(tmp_path)
            wait_settled(service, "101", "102")
            time.sleep(0.3)
        check_call_states(watch, callee="102", caller="101", call=call, since=since)


def test_a_call_to_an_unregistered_extension_fails_cleanly(
    call_lab: Lab, service: ServiceProcess
) -> None:
    """The dialplan's Dial() finds no contact for 104: the caller hears a failure, no hang."""
    from ispbx_lab.sipphone import SipError

    registrar = ("127.0.0.1", call_lab.sip_port)
    with ThreadedPhone("101", "101pass", registrar=registrar) as phone:
        started = time.monotonic()
        with pytest.raises(SipError) as info:
            phone.call("104", answer_timeout=5)
        assert info.value.status is not None and info.value.status >= 400
        assert time.monotonic() - started < 3
    wait_for(lambda: devicestate(service, "101") != "In use", 2, "101 to leave In use")
