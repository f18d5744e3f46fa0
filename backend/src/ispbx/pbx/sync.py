"""Full syncs and targeted refreshes: the bulk lists of a snapshot, and which endpoints' details a
reload really changed.

A full sync (after a login or ``FullyBooted``) takes the five bulk lists and then prefetches the
details of every endpoint. After a ``Reload`` the lists are taken again, but details are fetched
only for the endpoints that were added, whose listing changed, whose auth or AOR changed, or whose
configuration in pjsip.conf (templates included) differs from the one of the previous sync: one
PJSIPShowEndpoint per changed endpoint instead of one per endpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable, Mapping

from ispbx.ami import AmiClient, AmiMessage
from ispbx.pbx.state import (
    Keeper,
    Snapshot,
    contact_from_list,
    device_state_word,
    merge_listed_contact,
    split_names,
)
from ispbx.pjsip.model import PjsipConfig

LIST_TIMEOUT = 30.0
# Fields of list items that change without any configuration change.
PER_REPLY = frozenset({"ActionID", "Event"})
VOLATILE_LISTING = PER_REPLY | {"DeviceState", "Contacts", "ActiveChannels"}
VOLATILE_AOR = PER_REPLY | {"Contacts", "TotalContacts", "ContactsRegistered"}
Fingerprints = Mapping[str, Hashable]


async def take_snapshot(client: AmiClient, keeper: Keeper) -> Snapshot:
    """The five bulk lists, trimmed to what is kept."""
    snap = Snapshot()
    trim = keeper.trim
    for item in await _list(client, "PJSIPShowEndpoints"):
        name = item.get("ObjectName", "")
        snap.endpoints[name] = trim("EndpointList", item)
        snap.device_states[name] = item.get("DeviceState", "Unknown")
    for item in await _list(client, "PJSIPShowAuths"):
        snap.auths[item.get("ObjectName", "")] = trim("AuthDetail", item)
    for item in await _list(client, "PJSIPShowAors"):
        snap.aors[item.get("ObjectName", "")] = trim("AorDetail", item)
    for item in await _list(client, "PJSIPShowContacts"):
        contact = trim("ContactStatusDetail", contact_from_list(item))
        snap.contacts.setdefault(contact["EndpointName"], {})[contact["URI"]] = contact
    for item in await _list(client, "DeviceStateList"):
        device = item.get("Device", "")
        if device.startswith("PJSIP/"):
            snap.device_states[device.removeprefix("PJSIP/")] = device_state_word(
                item.get("State", "UNKNOWN")
            )
    return snap


def keep_known_contacts(old: Snapshot, new: Snapshot) -> None:
    """Give each contact of ``new`` what ``old`` knew of the same contact (same endpoint and
    URI): ContactList lacks fields ContactStatusDetail has, and a resync must not publish their
    loss, then their return after the detail prefetch, as two changes."""
    for endpoint, contacts in new.contacts.items():
        known = old.contacts.get(endpoint)
        if known:
            for uri, listed in contacts.items():
                contacts[uri] = merge_listed_contact(known.get(uri), listed)


async def _list(client: AmiClient, action: str) -> list[AmiMessage]:
    items = await client.list_action({"Action": action}, timeout=LIST_TIMEOUT)
    return [m for m in items if "Event" in m]


def config_fingerprints(config: PjsipConfig | None) -> dict[str, Hashable]:
    """Per endpoint, everything pjsip.conf says about it: its effective options and those of the
    auths and AORs it names. Equal fingerprints mean a reload cannot have changed its details."""
    if config is None:
        return {}
    auths, aors = config.objects("auth"), config.objects("aor")
    prints: dict[str, Hashable] = {}
    for name, endpoint in config.objects("endpoint").items():
        options = endpoint.options
        referenced = [
            _frozen(auths[a].options) if a in auths else None
            for a in split_names(options.get("auth")) + split_names(options.get("outbound_auth"))
        ]
        referenced += [
            _frozen(aors[a].options) if a in aors else None
            for a in split_names(options.get("aors"))
        ]
        prints[name] = _digest((_frozen(options), tuple(referenced)))
    return prints


def _frozen(options: Mapping[str, str]) -> Hashable:
    return tuple(sorted(options.items()))


def _digest(value: Hashable) -> bytes:
    """A 16-byte digest of a fingerprint: the inventory keeps one per endpoint, and the options
    themselves would be a second copy of the whole configuration (10 MB at 10,000)."""
    return hashlib.blake2b(repr(value).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def endpoints_to_refresh(
    old: Snapshot, new: Snapshot, old_prints: Fingerprints, new_prints: Fingerprints
) -> set[str]:
    """The endpoints of ``new`` whose details may differ from what was fetched before ``old``."""
    changed = new.endpoints.keys() - old.endpoints.keys()
    changed_auths = _changed_items(old.auths, new.auths, PER_REPLY)
    changed_aors = _changed_items(old.aors, new.aors, VOLATILE_AOR)
    for name, listing in new.endpoints.items():
        if name in changed:
            continue
        before = old.endpoints[name]
        uses = split_names(listing.get("Auths")) + split_names(listing.get("OutboundAuths"))
        if (
            _stable(before, VOLATILE_LISTING) != _stable(listing, VOLATILE_LISTING)
            or not changed_auths.isdisjoint(uses)
            or not changed_aors.isdisjoint(split_names(listing.get("Aor")))
            or old_prints.get(name) != new_prints.get(name)
        ):
            changed.add(name)
    return changed


def _changed_items(
    old: Mapping[str, AmiMessage],
    new: Mapping[str, AmiMessage],
    volatile: frozenset[str] = frozenset(),
) -> set[str]:
    names: Iterable[str] = old.keys() | new.keys()
    return {
        name
        for name in names
        if _stable(old.get(name), volatile) != _stable(new.get(name), volatile)
    }


def _stable(item: AmiMessage | None, volatile: frozenset[str]) -> dict[str, str] | None:
    return None if item is None else {k: v for k, v in item.items() if k not in volatile}
