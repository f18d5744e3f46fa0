"""``make demo``: the lab Asterisk with the sample pjsip.conf, the service wired to it, and two
phones registered (re-registering every minute), until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from ispbx_lab.lab import Lab, ensure_rootfs
from ispbx_lab.sipphone import SipPhone

BACKEND = Path(__file__).resolve().parents[2]
DEMO_PHONES = (("101", "101pass", "Linphone/5.2"), ("102", "102pass", "Yealink SIP-T46U"))


def run_demo(lab: Lab) -> int:
    ensure_rootfs()
    if lab.running_pid() is None:
        lab.start()
    env = {**os.environ, **lab.service_env()}
    service = subprocess.Popen([sys.executable, "src/main.py"], cwd=BACKEND, env=env)
    host = env.get("ISPBX_HTTP_HOST", "127.0.0.1")
    port = env.get("ISPBX_HTTP_PORT", "8000")
    print(
        f"\nISPBX Manager demo\n  API       http://{host}:{port}/endpoints\n"
        f"  docs      http://{host}:{port}/docs\n  health    http://{host}:{port}/health\n"
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
