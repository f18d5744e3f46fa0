"""API authentication (bearer tokens, viewer/admin roles) and secret redaction.

Tokens come from ISPBX_API_TOKENS / ``[api] tokens``. With none configured, an admin token is made
once and kept in a file only the service's user can read, so dashboard bookmarks survive restarts.
Every configured token is compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from ispbx.settings import Settings

log = logging.getLogger(__name__)
Role = Literal["viewer", "admin"]
MASK = "********"
# AMI header names (lower-cased, as in responses) and pjsip.conf option names that hold secrets.
SECRET_KEYS = frozenset(
    {
        "password",
        "md5cred",
        "oauthsecret",
        "refreshtoken",
        "passworddigest",
        "md5_cred",
        "oauth_secret",
        "refresh_token",
        "password_digest",
    }
)
# Keys whose values are messages that may quote a pjsip.conf line (config warnings and errors).
MESSAGE_KEYS = frozenset({"config_error", "error", "last_error", "warnings"})
SECRET_IN_TEXT = re.compile(
    r"(?i)\b(password|md5_?cred|oauth_?secret|refresh_?token|password_?digest|secret)"
    r"(\s*(?:=>?|:)\s*)([^\s,;'\"]+)"
)


@dataclass(frozen=True)
class Principal:
    role: Role

    @property
    def sees_secrets(self) -> bool:
        return self.role == "admin"


class TokenStore:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = [(role, token.encode()) for role, token in tokens]

    def role_of(self, token: str) -> Role | None:
        """The role of ``token``; every token is compared, in constant time."""
        offered = token.encode()
        found: Role | None = None
        for role, known in self._tokens:
            if hmac.compare_digest(offered, known) and found is None:
                found = "admin" if role == "admin" else "viewer"
        return found

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenStore:
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


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret-bearing key's value masked, and secrets quoted in
    messages (``config_error``, ``warnings``…) masked too."""
    if isinstance(value, dict):
        return {key: _redact_item(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _redact_item(key: Any, item: Any) -> Any:
    name = key.lower() if isinstance(key, str) else key
    if name in SECRET_KEYS and isinstance(item, str):
        return MASK
    if name in MESSAGE_KEYS:
        if isinstance(item, str):
            return redact_text(item)
        if isinstance(item, list):
            return [redact_text(i) if isinstance(i, str) else redact(i) for i in item]
    return redact(item)


@overload
def redact_text(text: str) -> str: ...
@overload
def redact_text(text: None) -> None: ...
def redact_text(text: str | None) -> str | None:
    """Mask ``password = x``-style secrets quoted inside a message."""
    if text is None:
        return None
    return SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
