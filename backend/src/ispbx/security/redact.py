"""Secret redaction: pure, no settings. Viewers, the public /health and the log never see a SIP
password, an OAuth secret or a digest, in AMI spelling or pjsip.conf spelling."""

from __future__ import annotations

import re
from typing import Any, overload

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
