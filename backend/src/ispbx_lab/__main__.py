"""``python -m ispbx_lab up|down|status|demo``: the lab Asterisk from the command line.

Ports come from ISPBX_LAB_AMI_PORT / ISPBX_LAB_SIP_PORT / ISPBX_LAB_HTTP_PORT (defaults 5038, 5060,
8088: Asterisk's own, so `make run` finds it without settings).
"""

from __future__ import annotations

import os
import sys

from ispbx_lab.lab import Lab, LabUnavailable, ensure_rootfs


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
        else:
            print("usage: python -m ispbx_lab up|down|status|demo", file=sys.stderr)
            return 2
    except LabUnavailable as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
