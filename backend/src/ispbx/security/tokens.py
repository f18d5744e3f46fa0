"""API tokens and roles (viewer, admin, metrics: only ``GET /metrics``).

Tokens come from ISPBX_API_TOKENS / ``[api] tokens``. With none configured, an admin token is made
once and kept in a file only the service's user can read, so dashboard bookmarks survive restarts.
Every configured token is compared in constant time.

An existing token file that group or others may read or write is refused, not repaired: its token
may already be known to someone else, so the operator decides (``chmod 600`` it to keep it, or
delete it and a new one is made). A token in it shorter than the ISPBX_API_TOKENS rule (8
characters) is refused the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ispbx.settings import Settings

log = logging.getLogger(__name__)
Role = Literal["viewer", "admin", "metrics"]
ROLES: dict[str, Role] = {"viewer": "viewer", "admin": "admin", "metrics": "metrics"}
MIN_TOKEN_LENGTH = 8  # as for ISPBX_API_TOKENS (ispbx.settings)


class TokenFileError(Exception):
    """The generated token file cannot be used; ``str()`` is one line naming the file."""


@dataclass(frozen=True)
class Principal:
    role: Role
    name: str = ""  # who, in the audit: the token's fingerprint (a token is never logged)

    @property
    def sees_secrets(self) -> bool:
        return self.role == "admin"

    @property
    def reads_data(self) -> bool:
        """Endpoints and events; a metrics token reads /metrics only."""
        return self.role != "metrics"


class TokenStore:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = [(role, token.encode()) for role, token in tokens]

    def role_of(self, token: str) -> Role | None:
        """The role of ``token``; every token is compared, in constant time."""
        principal = self.principal_of(token)
        return None if principal is None else principal.role

    def principal_of(self, token: str) -> Principal | None:
        """Who ``token`` is (role and fingerprint name), or None; every token is compared."""
        offered = token.encode()
        found: Principal | None = None
        for role, known in self._tokens:
            if hmac.compare_digest(offered, known) and found is None:
                granted: Role = ROLES.get(role, "viewer")
                found = Principal(granted, fingerprint(granted, known))
        return found

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenStore:
        if not settings.auth:
            log.warning(
                "ISPBX_AUTH=off: the API is open to anyone who can reach %s", settings.http_host
            )
            return cls([])
        tokens = settings.tokens
        if not tokens:
            tokens = [("admin", load_or_create_token(settings.token_file))]
            log.warning(
                "no API token configured: using the generated admin token in %s; dashboard: "
                "http://%s:%s/ui/#token=%s",
                settings.token_file,
                settings.http_host,
                settings.http_port,
                tokens[0][1],
            )
        return cls(tokens)


def fingerprint(role: str, token: bytes) -> str:
    """A name for a token that does not give it away: ``admin#3f9c2a1b``."""
    return f"{role}#{hashlib.blake2b(token, digest_size=4).hexdigest()}"


def ensure_token_file(settings: Settings) -> None:
    """Check (or make) the generated token file when it will be used, before the service starts:
    raises :class:`TokenFileError` so the start fails with one line."""
    if settings.auth and not settings.tokens:
        load_or_create_token(settings.token_file)


def load_or_create_token(path: Path) -> str:
    """Read the generated admin token, or make one (mode 0600) the first time (or when the file
    is empty). Raises :class:`TokenFileError` for a file others may read or a short token."""
    where = f"ISPBX_TOKEN_FILE {path}"
    try:
        mode = path.stat().st_mode
        token = path.read_text().strip()
    except FileNotFoundError:
        mode, token = 0o600, ""
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"{where}: cannot be read: {exc}") from None
    if mode & 0o077:
        raise TokenFileError(
            f"{where} may be read or written by group or others (mode {mode & 0o777:04o}): "
            "run chmod 600 on it to keep its token, or delete it to make a new one"
        )
    if token and len(token) < MIN_TOKEN_LENGTH:
        raise TokenFileError(
            f"{where} holds a token shorter than {MIN_TOKEN_LENGTH} characters: "
            "delete the file to make a new one"
        )
    if token:
        return token
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token
