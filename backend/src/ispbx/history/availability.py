"""Availability of one endpoint over a window, replayed from recorded transitions (pure).

Semantics (what "online" means in history):
- The endpoint is **online** while it has at least one contact that qualify does not call
  Unreachable (NonQualified and Unknown count: without qualify, registered is all we know),
  **unreachable** while it has contacts but all are Unreachable, **offline** while it has none.
  Each registered/unregistered/reachable/unreachable event carries that state after it
  (``online``, ``contacts``); an event without them (hand-made) counts as online for
  registered/reachable, offline for unregistered, unreachable for unreachable.
- **unknown**: before the first transition ever recorded for the endpoint, and, for every endpoint
  of the PBX, from ``ami_lost``/``ami_hung`` until ``ami_connected``/``ami_reconnected``. When AMI
  comes back the endpoint's last known state holds again until an event changes it: the resync
  after a reconnect records only what changed, so "nothing recorded" means "as before".
- The state at ``since`` comes from the last transition before it (and the last AMI event before
  it); events exactly at ``since`` apply from ``since``; events at ``until`` last zero seconds.
- offline_seconds includes unreachable_seconds. ``availability`` is online / (online + offline),
  the share of the time we knew; the ``*_share`` values are of the whole window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ispbx.history.events import AMI_DOWN, AMI_UP, EventKind, from_us, iso

US = 1_000_000


class Presence(StrEnum):
    ONLINE = "online"
    UNREACHABLE = "unreachable"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime
    state: Presence

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "state": self.state.value,
            "seconds": round(self.seconds, 6),
        }


@dataclass(frozen=True, slots=True)
class Availability:
    pbx: str
    endpoint: str
    since: datetime
    until: datetime
    periods: tuple[Period, ...]

    def seconds(self, *states: Presence) -> float:
        return sum(p.seconds for p in self.periods if p.state in states)

    @property
    def window_seconds(self) -> float:
        return (self.until - self.since).total_seconds()

    @property
    def online_seconds(self) -> float:
        return self.seconds(Presence.ONLINE)

    @property
    def offline_seconds(self) -> float:
        return self.seconds(Presence.OFFLINE, Presence.UNREACHABLE)

    @property
    def unreachable_seconds(self) -> float:
        return self.seconds(Presence.UNREACHABLE)

    @property
    def unknown_seconds(self) -> float:
        return self.seconds(Presence.UNKNOWN)

    def share(self, seconds: float) -> float | None:
        window = self.window_seconds
        return seconds / window if window > 0 else None

    @property
    def availability(self) -> float | None:
        known = self.online_seconds + self.offline_seconds
        return self.online_seconds / known if known > 0 else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary and periods (ISO 8601 UTC)."""

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 6)

        return {
            "pbx": self.pbx,
            "endpoint": self.endpoint,
            "since": iso(self.since),
            "until": iso(self.until),
            "window_seconds": rounded(self.window_seconds),
            "online_seconds": rounded(self.online_seconds),
            "offline_seconds": rounded(self.offline_seconds),
            "unreachable_seconds": rounded(self.unreachable_seconds),
            "unknown_seconds": rounded(self.unknown_seconds),
            "online_share": rounded(self.share(self.online_seconds)),
            "offline_share": rounded(self.share(self.offline_seconds)),
            "unknown_share": rounded(self.share(self.unknown_seconds)),
            "availability": rounded(self.availability),
            "periods": [p.as_dict() for p in self.periods],
        }


@dataclass(frozen=True, slots=True)
class Transition:
    """A recorded event that availability replays: a contact transition of the endpoint, or a
    PBX-wide AMI event. ``at`` in microseconds since the epoch; ``online``/``contacts`` are the
    endpoint's summary the event carries (None when it has none)."""

    at: int
    kind: EventKind
    online: bool | None = None
    contacts: int | None = None

    @classmethod
    def of(cls, at: int, kind: EventKind, data: Mapping[str, Any]) -> Transition:
        online, contacts = data.get("online"), data.get("contacts")
        return cls(
            at,
            kind,
            online if isinstance(online, bool) else None,
            contacts if isinstance(contacts, int) and not isinstance(contacts, bool) else None,
        )

    def presence(self) -> Presence:
        """The endpoint's state after this (contact transition) event."""
        if self.online is not None:
            if self.online:
                return Presence.ONLINE
            return Presence.UNREACHABLE if (self.contacts or 0) > 0 else Presence.OFFLINE
        if self.kind in (EventKind.REGISTERED, EventKind.REACHABLE):
            return Presence.ONLINE
        if self.kind == EventKind.UNREACHABLE:
            return Presence.UNREACHABLE
        return Presence.OFFLINE


def compute_availability(
    pbx: str,
    endpoint: str,
    since_us: int,
    until_us: int,
    *,
    before: Transition | None,
    ami_before: Transition | None,
    transitions: Iterable[Transition],
) -> Availability:
    """Replay ``transitions`` (in [since, until], ordered) from the state the last contact
    transition ``before`` and the last AMI event ``ami_before`` (both before ``since``) left."""
    until_us = max(until_us, since_us)
    state = Presence.UNKNOWN if before is None else before.presence()
    ami_up = ami_before is None or ami_before.kind not in AMI_DOWN
    # (start, state) of each change of the effective state; periods are built from them once.
    changes: list[tuple[int, Presence]] = [(since_us, state if ami_up else Presence.UNKNOWN)]
    for item in transitions:
        if item.kind in AMI_DOWN:
            ami_up = False
        elif item.kind in AMI_UP:
            ami_up = True
        else:
            state = item.presence()
        effective = state if ami_up else Presence.UNKNOWN
        if effective is changes[-1][1]:
            continue
        at = min(max(item.at, since_us), until_us)
        if at == changes[-1][0]:  # zero seconds in the previous state: replace it
            changes.pop()
            if changes and changes[-1][1] is effective:
                continue
        changes.append((at, effective))
    periods = [
        Period(from_us(start), from_us(end), presence)
        for (start, presence), (end, _) in zip(
            changes, [*changes[1:], (until_us, state)], strict=True
        )
        if end > start
    ]
    return Availability(pbx, endpoint, from_us(since_us), from_us(until_us), tuple(periods))
