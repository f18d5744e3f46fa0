"""``python -m ispbx_lab up|down|status|demo|call``: the lab Asterisk from the command line.

Ports come from ISPBX_LAB_AMI_PORT / ISPBX_LAB_SIP_PORT / ISPBX_LAB_HTTP_PORT (defaults 5038, 5060,
8088: Asterisk's own, so `make run` finds it without settings), the instance name from
ISPBX_LAB_NAME (default ``dev``).

``call CALLER CALLEE`` places a call through the lab, e.g. ``call 103 101`` while ``make demo``
runs: 103's credentials come from the lab's pjsip.conf (the sample's when the lab has none).
"""

from __future__ import annotations

import argparse
import os
import sys

from ispbx_lab.lab import SAMPLE_PJSIP, Lab, LabUnavailable, ensure_rootfs

USAGE = "usage: python -m ispbx_lab up|down|status|demo|call CALLER CALLEE [--seconds N]"


def lab_from_env() -> Lab:
    return Lab(
        name=os.environ.get("ISPBX_LAB_NAME", "dev"),
        ami_port=int(os.environ.get("ISPBX_LAB_AMI_PORT", "5038")),
        sip_port=int(os.environ.get("ISPBX_LAB_SIP_PORT", "5060")),
        http_port=int(os.environ.get("ISPBX_LAB_HTTP_PORT", "8088")),
    )


def up(lab: Lab) -> None:
    ensure_rootfs()
    if lab.running_pid() is None:
        try:
            lab.start()
        except LabUnavailable:
            if lab.running_pid() is None:  # not merely started by a concurrent `make lab-up`
                raise
    print(
        f"lab Asterisk {lab.name!r} up: AMI 127.0.0.1:{lab.ami_port}, "
        f"SIP udp 127.0.0.1:{lab.sip_port}, HTTP 127.0.0.1:{lab.http_port}"
    )
    print("point the service at it with:")
    for key, value in lab.service_env().items():
        print(f"  export {key}={value}")


def call(lab: Lab, args: list[str]) -> int:
    """Place one call through the lab and print how it goes (Ctrl-C hangs up)."""
    from ispbx_lab.accounts import AccountError, find_account
    from ispbx_lab.sipphone import Call, SipError, call_blocking

    parser = argparse.ArgumentParser(
        prog="python -m ispbx_lab call",
        description="Call CALLEE from CALLER through the lab Asterisk (e.g. 103 101 in the demo).",
    )
    parser.add_argument(
        "caller", help="the calling extension; its credentials come from pjsip.conf"
    )
    parser.add_argument("callee", help="the extension to call")
    parser.add_argument("--seconds", type=float, default=10.0, help="talk time (default 10)")
    options = parser.parse_args(args)
    conf = lab.pjsip_conf if lab.pjsip_conf.exists() else SAMPLE_PJSIP
    try:
        account = find_account(conf, options.caller)
    except AccountError as exc:
        print(f"call: {exc}", file=sys.stderr)
        return 1

    def show(state: Call) -> None:
        if state.state == "ringing":
            print(f"{options.callee} is ringing", flush=True)
        elif state.state == "active":
            print(f"answered; hanging up in {options.seconds:g} s (Ctrl-C: now)", flush=True)
        else:
            print(f"call ended ({state.end_reason})", flush=True)

    print(
        f"calling {options.callee} as {account.username} via SIP udp 127.0.0.1:{lab.sip_port}",
        flush=True,
    )
    try:
        call_blocking(
            account.username,
            account.password,
            options.callee,
            seconds=options.seconds,
            registrar=("127.0.0.1", lab.sip_port),
            on_call_state=show,
        )
    except SipError as exc:
        print(f"call failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0  # the phone hung up on the way out
    return 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    lab = lab_from_env()
    try:
        if command == "up":
            up(lab)
        elif command == "down":
            lab.stop()
            print(f"lab Asterisk {lab.name!r} stopped")
        elif command == "status":
            pid = lab.running_pid()
            print(f"lab Asterisk {lab.name!r}: " + (f"running (pid {pid})" if pid else "stopped"))
        elif command == "demo":
            from ispbx_lab.demo import run_demo

            return run_demo(lab)
        elif command == "call":
            return call(lab, argv[2:])
        else:
            print(USAGE, file=sys.stderr)
            return 2
    except LabUnavailable as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


def run(argv: list[str]) -> int:
    """``main``, quiet on a Ctrl-C that comes before a command handles it (while importing)."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(run(sys.argv))
