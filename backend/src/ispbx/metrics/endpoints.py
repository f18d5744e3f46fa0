"""The per-endpoint families, written as text and kept up to date from the inventory's changes.

prometheus_client formats a sample in several microseconds (label names escaped, labels sorted,
each value escaped on every scrape): at 10,000 endpoints and three series each that alone is
about 200 ms per scrape, and even looking every endpoint up again costs 20 ms. Here each
endpoint's lines are formatted when the inventory says it changed (``endpoints_changed``, the same
change stream the endpoint list is rebuilt from) and kept otherwise, so a scrape re-formats only
what changed and joins the rest. A sync (``None``: possibly everything) rebuilds the lines from the
current endpoints, so a deleted endpoint's series are gone with it.

Only live state is exported: while AMI is down (or before the first sync) these families have no
samples, since the last known state would otherwise look current; ``ispbx_ami_up`` says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ispbx.ami import AmiMessage
from ispbx.metrics.activity import roundtrip_seconds
from ispbx.metrics.text import Family, escape_label_value, number
from ispbx.pbx.state import status_of

ENDPOINTS = Family(
    "ispbx_endpoints",
    "gauge",
    "Endpoints loaded in Asterisk by status (online: the device state says the endpoint is "
    "reachable, Not in use, In use, Ringing …); only while AMI is connected",
)
ENDPOINT_UP = Family(
    "ispbx_endpoint_up",
    "gauge",
    "1 when the endpoint is online, 0 when offline (as ispbx_endpoints)",
)
DEVICE_STATE = Family(
    "ispbx_endpoint_device_state",
    "gauge",
    "The endpoint's device state as Asterisk words it (one series per endpoint, value 1)",
)
ENDPOINT_RTT = Family(
    "ispbx_endpoint_rtt_seconds",
    "gauge",
    "The round trip of the endpoint's slowest qualified contact, as Asterisk last reported it "
    "(on a status change or a detail fetch; only endpoints with a qualified contact)",
)
ENDPOINT_TRUNK = Family(
    "ispbx_endpoint_trunk",
    "gauge",
    "1 for every endpoint with an outbound_auth (a trunk that registers or authenticates "
    "to a provider); join on it to alert on trunks",
)
FAMILIES = (ENDPOINTS, ENDPOINT_UP, DEVICE_STATE, ENDPOINT_RTT, ENDPOINT_TRUNK)

Key = tuple[str, float | None, bool]  # device state, RTT, trunk


class EndpointQueries(Protocol):
    """The part of the inventory's query API this needs."""

    def endpoint_names(self) -> list[str]: ...
    def has(self, name: str) -> bool: ...
    def device_state(self, name: str) -> str: ...
    def contacts(self, name: str) -> list[AmiMessage]: ...
    def listing(self, name: str) -> AmiMessage | None: ...


def slowest_roundtrip(contacts: Sequence[AmiMessage]) -> float | None:
    found: float | None = None
    for contact in contacts:
        seconds = roundtrip_seconds(contact.get("RoundtripUsec"))
        if seconds is not None and (found is None or seconds > found):
            found = seconds
    return found


def is_trunk(listing: AmiMessage | None) -> bool:
    return bool(listing and listing.get("OutboundAuths", "").strip())


@dataclass
class EndpointLines:
    """One PBX's samples of each family, as encoded lines."""

    lines: dict[str, list[bytes]] = field(default_factory=lambda: {f.name: [] for f in FAMILIES})


@dataclass(frozen=True, slots=True)
class Entry:
    """One endpoint's lines, valid while its key is the same."""

    key: Key
    online: bool
    up: bytes
    state: bytes
    rtt: bytes  # b"" without a qualified contact
    trunk: bytes  # b"" unless a trunk


class EndpointSeries:
    """The per-endpoint families of one PBX."""

    def __init__(self, pbx_id: str) -> None:
        self._pbx = escape_label_value(pbx_id)
        self._entries: dict[str, Entry] = {}  # in the inventory's order
        self._full = True
        self._dirty: set[str] = set()

    def endpoints_changed(self, names: set[str] | None) -> None:
        """Inventory listener: these endpoints changed (None: possibly all of them)."""
        if names is None:
            self._full = True
        else:
            self._dirty |= names

    def render(self, inventory: EndpointQueries) -> EndpointLines:
        self._update(inventory)
        entries = list(self._entries.values())
        online = sum(entry.online for entry in entries)
        result = EndpointLines()
        result.lines[ENDPOINTS.name] = [
            f'{ENDPOINTS.name}{{pbx="{self._pbx}",status="{status}"}} {count}\n'.encode()
            for status, count in (("online", online), ("offline", len(entries) - online))
        ]
        result.lines[ENDPOINT_UP.name] = [entry.up for entry in entries]
        result.lines[DEVICE_STATE.name] = [entry.state for entry in entries]
        result.lines[ENDPOINT_RTT.name] = [entry.rtt for entry in entries if entry.rtt]
        result.lines[ENDPOINT_TRUNK.name] = [entry.trunk for entry in entries if entry.trunk]
        return result

    def _update(self, inventory: EndpointQueries) -> None:
        dirty, self._dirty = self._dirty, set()
        if self._full:
            self._full = False
            old = self._entries
            self._entries = {
                name: self._entry(inventory, name, old.get(name))
                for name in inventory.endpoint_names()
            }
            return
        entries = self._entries
        for name in dirty:
            if inventory.has(name):
                entries[name] = self._entry(inventory, name, entries.get(name))
            else:
                entries.pop(name, None)

    def _entry(self, inventory: EndpointQueries, name: str, old: Entry | None) -> Entry:
        key = (
            inventory.device_state(name),
            slowest_roundtrip(inventory.contacts(name)),
            is_trunk(inventory.listing(name)),
        )
        if old is not None and old.key == key:
            return old
        device_state, rtt, trunk = key
        ident = f'pbx="{self._pbx}",endpoint="{escape_label_value(name)}"'
        online = status_of(device_state) == "online"
        state = escape_label_value(device_state)
        return Entry(
            key,
            online,
            f"{ENDPOINT_UP.name}{{{ident}}} {int(online)}\n".encode(),
            f'{DEVICE_STATE.name}{{{ident},state="{state}"}} 1\n'.encode(),
            f"{ENDPOINT_RTT.name}{{{ident}}} {number(rtt)}\n".encode() if rtt is not None else b"",
            f"{ENDPOINT_TRUNK.name}{{{ident}}} 1\n".encode() if trunk else b"",
        )


def render_families(parts: Sequence[EndpointLines]) -> bytes:
    """Every family once, with the samples of every PBX under it (the text format wants all the
    lines of a family together)."""
    out: list[bytes] = []
    for family in FAMILIES:
        out.append(family.header())
        for part in parts:
            out.extend(part.lines[family.name])
    return b"".join(out)
