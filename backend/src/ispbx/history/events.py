"""What the history records: event kinds, the event value, UTC microsecond time, secret masking.

Plain values only: the inventory, the AMI session and the config store build ``HistoryEvent``s
and hand them to the recorder; nothing here knows about them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MASK = "********"


class EventKind(StrEnum):
    """Every kind of history event; the column holds the value."""

    REGISTERED = "registered"  # a contact appeared
    UNREGISTERED = "unregistered"  # a contact disappeared
    REACHABLE = "reachable"  # a contact's qualify status became Reachable
    UNREACHABLE = "unreachable"  # ... became Unreachable
    RTT = "rtt"  # a contact's round-trip time moved beyond the threshold
    DEVICE_STATE = "device_state"
    AMI_CONNECTED = "ami_connected"
    AMI_LOST = "ami_lost"
    AMI_HUNG = "ami_hung"
    AMI_RECONNECTED = "ami_reconnected"
    CONFIG_LOADED = "config_loaded"
    CONFIG_REJECTED = "config_rejected"
    FLAPPING_STARTED = "flapping_started"
    FLAPPING_STOPPED = "flapping_stopped"


# Registration and reachability: what availability replays and flapping counts.
CONTACT_TRANSITIONS = frozenset(
    {EventKind.REGISTERED, EventKind.UNREGISTERED, EventKind.REACHABLE, EventKind.UNREACHABLE}
)
# PBX-wide events that make every endpoint's state unknown (lost, hung) or known again.
AMI_DOWN = frozenset({EventKind.AMI_LOST, EventKind.AMI_HUNG})
AMI_UP = frozenset({EventKind.AMI_CONNECTED, EventKind.AMI_RECONNECTED})


def parse_kinds(kinds: object) -> frozenset[EventKind]:
    """``["registered", "rtt"]`` → kinds; an unknown word is a ValueError naming it."""
    if isinstance(kinds, str):
        kinds = [kinds]
    if not isinstance(kinds, list | tuple | set | frozenset):
        raise ValueError("kinds must be a list of event kinds")
    result = set()
    for word in kinds:
        try:
            result.add(EventKind(word))
        except ValueError:
            known = ", ".join(kind.value for kind in EventKind)
            raise ValueError(f"unknown event kind {word!r} (known: {known})") from None
    return frozenset(result)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch, UTC; naive datetimes are refused (they hide bugs)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp must be timezone-aware: {moment.isoformat()}")
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_us(micros: int) -> datetime:
    """The UTC datetime of ``to_us``'s value (exact to the microsecond)."""
    return EPOCH + timedelta(microseconds=micros)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` and microseconds, the one spelling every output uses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Keys whose values are secrets, in AMI spelling (Password, MD5Cred) and config spelling
# (password, md5_cred, oauth_secret, refresh_token, password_digest), plus the obvious others.
# Substrings, so that masking errs on the side of too much.
_SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "md5cred",
    "md5_cred",
    "token",
    "digest",
    "credential",
)


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered == "pass" or any(word in lowered for word in _SECRET_WORDS)


def clean_data(value: Any) -> Any:
    """``value`` as JSON types, with every secret-looking key's value masked.

    What goes into ``data`` comes from AMI and config files; anything that is not a JSON type
    (a datetime, a set) is stored as its string, so one odd value cannot make a batch unwritable.
    """
    if isinstance(value, Mapping):
        return {
            str(k): (MASK if is_secret_key(str(k)) else clean_data(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [clean_data(item) for item in value]
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


# An option line of pjsip.conf (or of a unified diff of one) that sets a secret.
_SECRET_LINE = re.compile(
    r"^(?P<head>[-+ ]?\s*(?:password|md5_cred|oauth_secret|refresh_token|password_digest|secret)"
    r"\s*=>?\s*)(?P<value>[^;\r\n]*?)(?P<tail>\s*(?:;.*)?)$",
    re.IGNORECASE | re.MULTILINE,
)


def mask_secret_lines(text: str) -> str:
    """Mask the values of ``password = …``-like lines (in a config file or a diff of one)."""

    def _mask(match: re.Match[str]) -> str:
        value = match.group("value")
        return match.group("head") + (MASK if value else "") + match.group("tail")

    return _SECRET_LINE.sub(_mask, text)


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One thing that happened. ``endpoint`` is None for PBX-wide events (AMI, config).

    ``data`` is copied on construction, so the caller may keep mutating its own dicts; secrets
    in it are masked when the event is written.
    """

    pbx: str
    endpoint: str | None
    kind: EventKind
    occurred_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", EventKind(self.kind))
        object.__setattr__(self, "data", dict(self.data))
        to_us(self.occurred_at)  # refuse a naive timestamp here, not in the writer


@dataclass(frozen=True, slots=True)
class EventRow:
    """A stored event as queries return it."""

    id: int
    pbx: str
    endpoint: str | None
    kind: EventKind
    occurred_at: datetime
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO 8601 UTC timestamp."""
        return {
            "id": self.id,
            "pbx": self.pbx,
            "endpoint": self.endpoint,
            "kind": self.kind.value,
            "occurred_at": iso(self.occurred_at),
            "data": self.data,
        }
