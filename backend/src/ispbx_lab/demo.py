"""``make demo``: the lab Asterisk with the sample pjsip.conf, the service wired to it, and two
phones registered (re-registering every minute), until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ispbx.settings import load_settings
from ispbx_lab.lab import Lab, ensure_rootfs
from ispbx_lab.sipphone import SipPhone

BACKEND = Path(__file__).resolve().parents[2]
DEMO_PHONES = (("101", "101pass", "Linphone/5.2"), ("102", "102pass", "Yealink SIP-T46U"))


def run_demo(lab: Lab) -> int:
    ensure_rootfs()
    if lab.running_pid() is None:
        lab.start()
    env = {**os.environ, **lab.service_env()}
    settings = load_settings(env)
    service = subprocess.Popen([sys.executable, "src/main.py"], cwd=BACKEND, env=env)
    base = f"http://{settings.http_host}:{settings.http_port}"
    token = _wait_for_token(settings.token_file, settings.tokens)
    print(
        f"\nISPBX Manager demo\n"
        f"  dashboard {base}/ui/#token={token}\n"
        f"  API       curl -H 'Authorization: Bearer {token}' {base}/endpoints\n"
        f"  docs      {base}/docs\n  health    {base}/health\n"
        f"  phones    {', '.join(p[0] for p in DEMO_PHONES)} registered; Ctrl-C stops everything\n",
        flush=True,
    )
    try:
        asyncio.run(_keep_phones_registered(lab))
    except KeyboardInterrupt:
        pass
    finally:
        service.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            service.wait(timeout=10)
        lab.stop()
    return 0


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


async def _keep_phones_registered(lab: Lab) -> None:
    phones = [
        SipPhone(user, password, registrar=("127.0.0.1", lab.sip_port), user_agent=agent)
        for user, password, agent in DEMO_PHONES
    ]
    for phone in phones:
        await phone.open()
    try:
        while True:
            for phone in phones:
                await phone.register(expires=120)
            await asyncio.sleep(60)
    finally:
        for phone in phones:
            await phone.close()
