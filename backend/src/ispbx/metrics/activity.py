"""What happens on one PBX between two scrapes, counted: registration events, online/offline
transitions and the round trips Asterisk reports.

A gauge can be read from the present state at scrape time; a count of events cannot, so
:class:`PbxActivity` listens (wired in ``Pbx._wire``) and keeps plain counters that the collector
reads.

Registration events come from AMI's ContactStatus events as they arrive (each counted once,
whether or not the inventory buffers it during a sync), in the history's words: ``registered``
(a contact the inventory did not know), ``unregistered`` (Removed: un-REGISTER or expiry),
``reachable`` / ``unreachable`` (qualify), ``updated`` (anything else about a known contact).
Asterisk 22 sends ContactStatus only when a contact's status changes: a registration is
``NonQualified`` (then ``Reachable`` once a qualify answers), a re-registration that changes
nothing sends no event, and a qualify that keeps a contact Reachable sends none either. So the
RTT histogram holds the round trip of every qualify that changed a contact's status (measured
against Asterisk 22.10).

State changes come from the inventory's change stream, comparing each named endpoint's status with
the one seen last, so a resync that changes nothing counts nothing and a transition missed while
AMI was down is counted by the sync that finds it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Protocol

from ispbx.ami import AmiMessage
from ispbx.metrics.histogram import RTT_BUCKETS, Buckets
from ispbx.pbx.state import status_of

REGISTRATION_KINDS = ("registered", "unregistered", "reachable", "unreachable", "updated")
ContactKey = tuple[str, str]  # endpoint, contact URI


class EndpointStates(Protocol):
    """The part of the inventory's query API this needs."""

    def endpoint_names(self) -> list[str]: ...
    def has(self, name: str) -> bool: ...
    def device_state(self, name: str) -> str: ...
    def contacts(self, name: str) -> list[AmiMessage]: ...


def roundtrip_seconds(value: str | None) -> float | None:
    """A ``RoundtripUsec`` value in seconds; None for ``N/A``, 0 (not qualified) and junk."""
    if not value or not value.isascii() or not value.isdigit():
        return None
    usec = int(value)
    return usec / 1_000_000 if usec > 0 else None


class PbxActivity:
    def __init__(self, inventory: EndpointStates) -> None:
        self._inventory = inventory
        # Known label values start at 0, so rate() has a first point before the first event.
        self.registration_events = Counter(dict.fromkeys(REGISTRATION_KINDS, 0))
        self.state_changes = Counter({"online": 0, "offline": 0})  # transitions into each
        self.rtt = Buckets(RTT_BUCKETS)  # the round trips ContactStatus events report, seconds
        self._status: dict[str, str] = {}  # endpoint -> the status seen last
        self._seen: set[ContactKey] = set()  # contacts of events since the last sync

    def on_ami_event(self, message: AmiMessage) -> None:
        """Session listener: count ContactStatus events by kind, and their round trips."""
        if message.get("Event") != "ContactStatus":
            return
        self.registration_events[self._kind(message)] += 1
        seconds = roundtrip_seconds(message.get("RoundtripUsec"))
        if seconds is not None:
            self.rtt.observe(seconds)

    def _kind(self, message: AmiMessage) -> str:
        """Runs before the inventory applies the event (``Pbx._wire`` subscribes it first), so
        the inventory still says whether the contact was known; ``_seen`` covers the events the
        inventory buffers during a sync."""
        endpoint, uri = message.get("EndpointName", ""), message.get("URI", "")
        status = message.get("ContactStatus", "")
        key = (endpoint, uri)
        if status == "Removed":
            self._seen.discard(key)
            return "unregistered"
        known = key in self._seen or any(
            contact.get("URI") == uri for contact in self._inventory.contacts(endpoint)
        )
        self._seen.add(key)
        if not known:
            return "registered"
        if status == "Reachable":
            return "reachable"
        if status == "Unreachable":
            return "unreachable"
        return "updated"

    def endpoints_changed(self, names: set[str] | None) -> None:
        """Inventory listener: these endpoints changed (None: possibly all of them)."""
        inventory = self._inventory
        if names is None:
            self._compare(inventory.endpoint_names(), forget_others=True)
            self._seen = set()  # the new snapshot knows every contact of the events before it
            return
        gone = [name for name in names if not inventory.has(name)]
        for name in gone:
            self._status.pop(name, None)
        self._compare((name for name in names if inventory.has(name)), forget_others=False)

    def _compare(self, names: Iterable[str], *, forget_others: bool) -> None:
        seen = {} if forget_others else self._status
        previous = self._status
        for name in names:
            status = status_of(self._inventory.device_state(name))
            before = previous.get(name)
            if before is not None and before != status:
                self.state_changes[status] += 1
            seen[name] = status
        self._status = seen
