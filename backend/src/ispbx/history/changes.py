"""Which history events a change of one endpoint's contacts and device state means (pure).

The inventory holds contacts as AMI field dicts keyed by URI (``URI``, ``Status``, ``UserAgent``,
``ViaAddress``, ``RoundtripUsec``, ``RegExpire``, ``AOR``…) and device states as words (``Not in
use``, ``Unavailable``…), and mutates them in place. ``endpoint_changes`` compares two states and
returns the events plus the state to compare with next time: a private copy of the fields it uses,
in which the round-trip time stays at the last *recorded* value until it moves beyond the
threshold, so a slow drift is recorded once it adds up instead of never. Comparing a state with
itself gives no events, so a resync that changes nothing records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ispbx.history.events import EventKind, HistoryEvent, utc_now

# The contact fields the history uses; a copy keeps only these.
CONTACT_FIELDS = ("URI", "AOR", "Status", "UserAgent", "ViaAddress", "RoundtripUsec", "RegExpire")
UNREACHABLE = "Unreachable"
REACHABLE = "Reachable"

Contacts = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class RttThreshold:
    """An RTT change is recorded when it moves by at least ``ratio`` of the recorded value AND by
    at least ``min_us`` (both: 2 → 4 ms is +100 % but noise; 400 → 430 ms is 30 ms but noise)."""

    ratio: float = 0.5
    min_us: int = 20_000

    def crossed(self, recorded: int, current: int) -> bool:
        delta = abs(current - recorded)
        return delta >= self.min_us and delta >= self.ratio * recorded


@dataclass(frozen=True, slots=True)
class EndpointState:
    """One endpoint as the history last saw it. ``device_state`` None: not known."""

    contacts: Contacts = field(default_factory=dict)
    device_state: str | None = None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:  # RoundtripUsec is "N/A" before the first qualify
        return None


def _copy(contact: Mapping[str, str]) -> dict[str, str]:
    return {key: contact[key] for key in CONTACT_FIELDS if key in contact}


def is_usable(contact: Mapping[str, str]) -> bool:
    """A contact counts as online unless qualify says Unreachable (NonQualified and Unknown count:
    without qualify a registered contact is all we know)."""
    return contact.get("Status") != UNREACHABLE


def _summary(contacts: Contacts) -> dict[str, Any]:
    """The endpoint-level state after an event: what availability replays."""
    return {
        "online": any(is_usable(c) for c in contacts.values()),
        "contacts": len(contacts),
    }


def _contact_data(contact: Mapping[str, str]) -> dict[str, Any]:
    return {
        "uri": contact.get("URI"),
        "aor": contact.get("AOR"),
        "status": contact.get("Status"),
        "user_agent": contact.get("UserAgent"),
        "via_address": contact.get("ViaAddress"),
        "rtt_us": _int_or_none(contact.get("RoundtripUsec")),
        "reg_expire": _int_or_none(contact.get("RegExpire")),
    }


def endpoint_changes(
    pbx: str,
    endpoint: str,
    previous: EndpointState | None,
    current: EndpointState | None,
    *,
    now: datetime,
    rtt: RttThreshold = RttThreshold(),  # frozen, so one shared default is safe
) -> tuple[list[HistoryEvent], EndpointState]:
    """The events from ``previous`` to ``current`` and the state to compare with next time.

    ``previous`` None: first sight (every contact is new; events carry ``initial: true``).
    ``current`` None: the endpoint is gone (its contacts are unregistered).
    Events are ordered as they are applied (removed contacts, new contacts, status changes, RTT,
    device state), and each contact event's ``online``/``contacts`` describe the endpoint after it.
    """
    initial = previous is None
    before = previous or EndpointState()
    after = current or EndpointState()
    extra: dict[str, Any] = {"initial": True} if initial else {}
    events: list[HistoryEvent] = []

    def emit(kind: EventKind, data: dict[str, Any]) -> None:
        events.append(HistoryEvent(pbx, endpoint, kind, now, {**data, **extra}))

    seen: dict[str, dict[str, str]] = {uri: dict(c) for uri, c in before.contacts.items()}
    for uri in [uri for uri in seen if uri not in after.contacts]:
        gone = seen.pop(uri)
        last = _contact_data(gone)
        del last["status"], last["rtt_us"], last["reg_expire"]
        emit(EventKind.UNREGISTERED, last | _summary(seen))
    for uri, contact in after.contacts.items():
        if uri not in seen:
            seen[uri] = _copy(contact)
            emit(EventKind.REGISTERED, _contact_data(contact) | _summary(seen))
    for uri, contact in after.contacts.items():
        old = seen[uri]
        if "Status" not in contact:
            continue
        was, now_status = old.get("Status"), contact["Status"]
        old["Status"] = now_status
        kind = _reachability_kind(was, now_status)
        if kind is not None:
            data: dict[str, Any] = {"uri": uri, "status": now_status, "previous_status": was}
            data["rtt_us"] = _int_or_none(contact.get("RoundtripUsec"))
            emit(kind, data | _summary(seen))
    for uri, contact in after.contacts.items():
        _rtt_change(emit, seen[uri], contact, rtt)
        for key in ("URI", "AOR", "UserAgent", "ViaAddress", "RegExpire"):
            if key in contact:
                seen[uri][key] = contact[key]
    device_state = after.device_state if after.device_state is not None else before.device_state
    if after.device_state is not None and after.device_state != before.device_state:
        emit(EventKind.DEVICE_STATE, {"state": after.device_state, "previous": before.device_state})
    return events, EndpointState(seen, device_state)


def _reachability_kind(was: str | None, now: str) -> EventKind | None:
    if now == UNREACHABLE and was != UNREACHABLE:
        return EventKind.UNREACHABLE
    if now == REACHABLE and was != REACHABLE:
        return EventKind.REACHABLE
    return None


def _rtt_change(
    emit: Callable[[EventKind, dict[str, Any]], None],
    kept: dict[str, str],
    contact: Mapping[str, str],
    rtt: RttThreshold,
) -> None:
    """Record an RTT beyond the threshold of the kept (last recorded) value, and keep it."""
    current = _int_or_none(contact.get("RoundtripUsec"))
    if current is None:
        return
    recorded = _int_or_none(kept.get("RoundtripUsec"))
    if recorded is None:  # the first measurement is the baseline, recorded with the contact
        kept["RoundtripUsec"] = contact["RoundtripUsec"]
        return
    if rtt.crossed(recorded, current):
        kept["RoundtripUsec"] = contact["RoundtripUsec"]
        emit(
            EventKind.RTT,
            {"uri": contact.get("URI"), "rtt_us": current, "previous_rtt_us": recorded},
        )


class ChangeDetector:
    """``endpoint_changes`` with the state kept per endpoint and the time from a clock.

    One per PBX; call ``observe`` from the inventory's change listener with the endpoint's
    current contacts (dict keyed by URI, as the inventory holds them) and device state.
    """

    def __init__(
        self,
        pbx: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        rtt: RttThreshold = RttThreshold(),
    ) -> None:
        self.pbx = pbx
        self._clock = clock
        self._rtt = rtt
        self._states: dict[str, EndpointState] = {}

    def observe(
        self, endpoint: str, contacts: Contacts | None, device_state: str | None
    ) -> list[HistoryEvent]:
        """The events since the last observation; ``contacts`` None: the endpoint is gone."""
        current = None if contacts is None else EndpointState(contacts, device_state)
        events, state = endpoint_changes(
            self.pbx,
            endpoint,
            self._states.get(endpoint),
            current,
            now=self._clock(),
            rtt=self._rtt,
        )
        if current is None:
            self._states.pop(endpoint, None)
        else:
            self._states[endpoint] = state
        return events

    def known(self, endpoint: str) -> bool:
        return endpoint in self._states

    def endpoints(self) -> frozenset[str]:
        """Every endpoint observed and not gone: after a full resync, observe these too, so the
        ones that vanished are unregistered."""
        return frozenset(self._states)
