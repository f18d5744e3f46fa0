"""Secret redaction: pure, no settings. Viewers, the public /health and the log never see a SIP
password, an OAuth secret or a digest, in AMI spelling or pjsip.conf spelling, nor the values of
``set_var`` (channel variables often carry API keys): viewers see the variables' names only."""

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
# set_var in pjsip.conf spelling and AMI's (SetVar, lower-cased): "NAME=value,NAME2=value2".
SET_VAR_KEYS = frozenset({"set_var", "setvar"})
# A variable name at the start of an entry: A_B, __INHERITED, or a function like HEADER(add,X-A).
SET_VAR_NAME = re.compile(r"(?:^|,)\s*(_{0,2}[A-Za-z][\w.]*(?:\([^()=]*\))?)\s*=")
# Keys whose values are messages that may quote a pjsip.conf line (config warnings and errors).
MESSAGE_KEYS = frozenset({"config_error", "error", "last_error", "warnings"})
SECRET_IN_TEXT = re.compile(
    r"(?i)\b(password|md5_?cred|oauth_?secret|refresh_?token|password_?digest|secret)"
    r"(\s*(?:=>?|:)\s*)([^\s,;'\"]+)"
)
SET_VAR_IN_TEXT = re.compile(r"(?i)\b(set_?var\s*(?:=>?|:)\s*[^=\s,;'\"]+=)([^\s,;'\"]*)")


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
    if name in SET_VAR_KEYS and isinstance(item, str):
        return mask_set_var(item)
    if name in MESSAGE_KEYS:
        if isinstance(item, str):
            return redact_text(item)
        if isinstance(item, list):
            return [redact_text(i) if isinstance(i, str) else redact(i) for i in item]
    return redact(item)


def mask_set_var(value: str) -> str:
    """``A=1,B=x,y`` → ``A=********,B=********``: the names, never a value (a value's text after
    a comma is dropped; one that itself looks like ``,NAME=`` shows that NAME)."""
    names = SET_VAR_NAME.findall(value)
    if not names:
        return MASK if value else value
    return ",".join(f"{name}={MASK}" for name in names)


@overload
def redact_text(text: str) -> str: ...
@overload
def redact_text(text: None) -> None: ...
def redact_text(text: str | None) -> str | None:
    """Mask ``password = x``-style secrets quoted inside a message."""
    if text is None:
        return None
    text = SET_VAR_IN_TEXT.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
