"""API tokens and roles (viewer, admin, metrics: only ``GET /metrics``).

Tokens come from ISPBX_API_TOKENS / ``[api] tokens``. With none configured, an admin token is made
once and kept in a file only the service's user can read, so dashboard bookmarks survive restarts.
Every configured token is compared in constant time.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Principal:
    role: Role

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
        offered = token.encode()
        found: Role | None = None
        for role, known in self._tokens:
            if hmac.compare_digest(offered, known) and found is None:
                found = ROLES.get(role, "viewer")
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


def load_or_create_token(path: Path) -> str:
    """Read the generated admin token, or make one (mode 0600) the first time."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token
