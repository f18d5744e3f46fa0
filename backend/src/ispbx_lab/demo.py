"""``make demo``: the lab Asterisk with the sample pjsip.conf, the service wired to it, and two
phones (101, 102) that stay registered and answer calls, until Ctrl-C, SIGTERM or SIGHUP.

Every stop takes one path, whatever the signal: the phones close, the service (started in its
own session, so a terminal's Ctrl-C reaches it only through the demo, and only once) gets one
SIGINT, the lab Asterisk the demo started is stopped, one line is printed and the exit code is 0.
The service's log goes to a file (its path is printed), so its shutdown does not flood the
terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType

from ispbx.pjsip.model import PjsipConfigError
from ispbx.settings import load_settings
from ispbx_lab.accounts import AccountError, find_account, read_accounts
from ispbx_lab.lab import Lab, ensure_rootfs
from ispbx_lab.sipmsg import user_of
from ispbx_lab.sipphone import Call, SipError, SipPhone

BACKEND = Path(__file__).resolve().parents[2]
DEMO_PHONES = ("101", "102")  # registered by the demo; they answer calls
DEMO_CALLER = "103"  # left free for a softphone, and the caller of `python -m ispbx_lab call`
RING_SECONDS = 2.0  # the demo phones ring this long before they answer
REGISTER_EXPIRES = 120
REREGISTER_EVERY = 60.0
SERVICE_START_TIMEOUT = 20.0
SERVICE_STOP_TIMEOUT = 2.0  # then the service's process group is killed
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DemoStopped(BaseException):
    """A stop signal arrived while the demo was starting (raised from the signal handler)."""


class DemoFailed(RuntimeError):
    """The demo cannot run; the message is one line."""


# -- signals ---------------------------------------------------------------------------------


class Stopper:
    """One stop, whatever the signal and however often it comes.

    While the demo starts, the first signal raises DemoStopped (except inside ``deferred()``,
    where it waits for the block to end); while the phones run it sets their loop's stop event.
    Later signals are ignored, so nothing interrupts the clean-up.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._deferring = False

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def ignore_further(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)
        elif not self._deferring:
            raise DemoStopped(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A block a signal must not cut in two (spawning a process and noting its pid)."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self.signum is not None and self._loop is None:
            raise DemoStopped(self.signum)

    def attach(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self._loop, self._event = loop, event
        if self.signum is not None:
            event.set()

    def detach(self) -> None:
        self._loop, self._event = None, None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "no signal"


# -- the demo --------------------------------------------------------------------------------


def run_demo(lab: Lab, env: Mapping[str, str] | None = None) -> int:
    """Run the demo until a stop signal; 0 after a clean stop, 1 when it could not start."""
    environ = dict(os.environ if env is None else env)
    stopper = Stopper()
    stopper.install()
    service: subprocess.Popen[bytes] | None = None
    started_lab = False
    failure: str | None = None
    try:
        ensure_rootfs()
        if lab.running_pid() is None:
            with stopper.deferred():
                started_lab = True
                lab.start()
        service_env = {**environ, **lab.service_env()}
        settings = load_settings(service_env)
        base = f"http://{settings.http_host}:{settings.http_port}"
        log_path = lab.home / "service.log"
        with stopper.deferred():
            service = _start_service(service_env, log_path)
        _wait_until_serving(service, base, log_path)
        token = _wait_for_token(settings.token_file, settings.tokens)
        print(_banner(lab, base, token, log_path, started_lab), flush=True)
        asyncio.run(_run_phones(lab, stopper))
    except DemoStopped:
        pass
    except (DemoFailed, AccountError) as exc:
        failure = str(exc)
    finally:
        stopper.ignore_further()
        started = time.monotonic()
        _signal_service(service)  # its graceful shutdown overlaps the lab's
        if started_lab:
            lab.stop()
        _wait_service(service)
        took = time.monotonic() - started
    if failure is not None:
        print(f"demo: {failure}", file=sys.stderr)
        return 1
    what = f"lab Asterisk {lab.name!r} stopped" if started_lab else "lab Asterisk left running"
    with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
        print(f"demo stopped ({stopper.name}): service, phones and {what} in {took:.1f} s")
    return 0


def _start_service(env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``src/main.py`` in its own session: a terminal's Ctrl-C must reach it only through us."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            [sys.executable, "src/main.py"],
            cwd=BACKEND,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        os.close(fd)


def _wait_until_serving(service: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVICE_START_TIMEOUT
    while time.monotonic() < deadline:
        code = service.poll()
        if code is not None:
            raise DemoFailed(f"the service exited with code {code}; see {log_path}")
        try:
            with urllib.request.urlopen(base + "/", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise DemoFailed(f"the service did not answer within {SERVICE_START_TIMEOUT:.0f} s")


def _signal_service(service: subprocess.Popen[bytes] | None) -> None:
    """One SIGINT: uvicorn's graceful shutdown."""
    if service is not None and service.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGINT)


def _wait_service(service: subprocess.Popen[bytes] | None) -> None:
    """Wait for the service, killing its whole process group if it takes too long."""
    if service is None:
        return
    try:
        service.wait(timeout=SERVICE_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGKILL)
        service.wait(timeout=5)


def _wait_for_token(path: Path, configured: list[tuple[str, str]]) -> str:
    """The first admin token: a configured one, or the one the service generates at start."""
    for role, token in configured:
        if role == "admin":
            return token
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            token = path.read_text().strip()
            if token:
                return token
        time.sleep(0.1)
    return "(see the service log)"


def call_command(lab: Lab) -> str:
    """The command line that places a demo call on this lab."""
    settings = []
    if lab.name != "dev":
        settings.append(f"ISPBX_LAB_NAME={lab.name} ")
    if lab.sip_port != 5060:
        settings.append(f"ISPBX_LAB_SIP_PORT={lab.sip_port} ")
    command = f"{sys.executable} -m ispbx_lab call {DEMO_CALLER} {DEMO_PHONES[0]}"
    return "".join(settings) + command


def _banner(lab: Lab, base: str, token: str, log_path: Path, started_lab: bool) -> str:
    try:
        accounts, transports = read_accounts(lab.pjsip_conf)
    except PjsipConfigError as exc:
        accounts, transports = [], []
        print(f"demo: cannot read {lab.pjsip_conf}: {exc}", file=sys.stderr)
    sip = ", ".join(f"{t.bind} {t.protocol}" for t in transports) or f"127.0.0.1:{lab.sip_port} udp"
    lines = [
        "",
        f"ISPBX Manager demo (lab Asterisk {lab.name!r}"
        + ("" if started_lab else ", already running")
        + ")",
        f"  dashboard  {base}/ui/#token={token}",
        f"  API        curl -H 'Authorization: Bearer {token}' {base}/endpoints",
        f"  docs       {base}/docs",
        f"  health     {base}/health",
        f"  SIP        {sip} (registrar and proxy; loopback only)",
        "  accounts   user/password (auth user = user), for a softphone or SIPp:",
    ]
    for account in accounts:
        if account.extension in DEMO_PHONES:
            role = f"registered by the demo; rings {RING_SECONDS:g} s, then answers"
        else:
            role = "free"
        codecs = f", codecs {account.codecs}" if account.codecs else ""
        lines.append(f"    {account.username}/{account.password:<10} {role}{codecs}")
    lines += [
        f"  call       {call_command(lab)}",
        f"             ({DEMO_CALLER} calls {DEMO_PHONES[0]}; the dashboard shows Ringing, then"
        " In use; any phone may call 101 or 102)",
        f"  log        {log_path}",
        "  Ctrl-C (or SIGTERM, SIGHUP) stops the service, the phones and the lab Asterisk",
        "",
    ]
    return "\n".join(lines)


async def _run_phones(lab: Lab, stopper: Stopper) -> None:
    """Keep the demo phones registered (and answering) until the stop event."""
    stop = asyncio.Event()
    stopper.attach(asyncio.get_running_loop(), stop)
    try:
        announce = _announcer(stopper)
        phones = []
        for user in DEMO_PHONES:
            account = find_account(lab.pjsip_conf, user)
            phones.append(
                SipPhone(
                    account.username,
                    account.password,
                    registrar=("127.0.0.1", lab.sip_port),
                    ring_seconds=RING_SECONDS,
                    on_call_state=announce,
                )
            )
        for phone in phones:
            await phone.open()
        try:
            while not stop.is_set():
                for phone in phones:
                    try:
                        await phone.register(expires=REGISTER_EXPIRES)
                    except SipError as err:
                        print(f"  phone {phone.user}: {err}", flush=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), REREGISTER_EVERY)
        finally:
            for phone in phones:
                await phone.close()
    finally:
        stopper.detach()


def _announcer(stopper: Stopper) -> Callable[[Call], None]:
    """A line per call event of the demo phones, until the demo stops (then it is silent)."""

    def announce(call: Call) -> None:
        if stopper.signum is not None:
            return
        party = call.remote_user or call.remote_party
        if call.state == "ringing":
            text = f"call from {party} ringing"
        elif call.state == "active":
            text = f"answered the call from {party}"
        else:
            text = f"call with {party} ended ({call.end_reason})"
        print(f"  phone {user_of(call.local_party)}: {text}", flush=True)

    return announce
