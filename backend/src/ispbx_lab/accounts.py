"""The SIP accounts and transports of a pjsip.conf, for the demo's banner and the call command.

Read with the service's own pjsip.conf parser (``ispbx.pjsip``), so what is printed is what
Asterisk loads. Light on imports: ``python -m ispbx_lab call`` starts with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ispbx.pjsip.model import PjsipConfigError
from ispbx.pjsip.parser import parse_file


class AccountError(RuntimeError):
    """No usable account; the message is one line."""


@dataclass(frozen=True)
class Account:
    """A SIP account of the loaded pjsip.conf that a softphone may use."""

    extension: str
    username: str
    password: str
    codecs: str


@dataclass(frozen=True)
class Transport:
    protocol: str
    bind: str


def read_accounts(pjsip_conf: Path) -> tuple[list[Account], list[Transport]]:
    """The userpass accounts and transports of a pjsip.conf, as Asterisk would load them."""
    config = parse_file(pjsip_conf)
    accounts: list[Account] = []
    for name, endpoint in config.objects("endpoint").items():
        auth_name = endpoint.options.get("auth", "").split(",")[0].strip()
        auth = config.auth(auth_name) if auth_name else None
        if auth is None or auth.get("auth_type", "userpass") != "userpass":
            continue
        username = auth.get("username") or name
        accounts.append(
            Account(name, username, auth.get("password", ""), endpoint.options.get("allow", ""))
        )
    transports = [
        Transport(t.options.get("protocol", "udp"), t.options.get("bind", ""))
        for t in config.objects("transport").values()
    ]
    return accounts, transports


def find_account(pjsip_conf: Path, extension: str) -> Account:
    try:
        accounts, _ = read_accounts(pjsip_conf)
    except PjsipConfigError as exc:
        raise AccountError(f"cannot read {pjsip_conf}: {exc}") from exc
    for account in accounts:
        if account.extension == extension:
            return account
    raise AccountError(f"{pjsip_conf} has no endpoint {extension!r} with a userpass auth")
