"""What the inventory holds about one Asterisk, in AMI's own spelling, and the words AMI uses.

Pure values and functions: no AMI access here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from ispbx.ami import AmiMessage
from ispbx.pbx.detail import DetailFields

# DeviceStateChange spells states as tokens; EndpointList/EndpointDetail use these words.
DEVICE_STATE_WORDS = {
    "UNKNOWN": "Unknown",
    "NOT_INUSE": "Not in use",
    "INUSE": "In use",
    "BUSY": "Busy",
    "INVALID": "Invalid",
    "UNAVAILABLE": "Unavailable",
    "RINGING": "Ringing",
    "RINGINUSE": "Ring+Inuse",
    "ONHOLD": "On Hold",
}
ONLINE_STATES = frozenset({"Not in use", "In use", "Busy", "Ringing", "Ring+Inuse", "On Hold"})
# ContactStatus events say "Created"/"Updated" where ContactStatusDetail says the status.
CONTACT_STATUS_WORDS = {"Created": "Unknown", "Updated": "Unknown"}
# ContactList spells some ContactStatusDetail fields differently (older Asterisk: Uri, Endpoint,
# CallId, Aor; 22: ExpirationTime for RegExpire, ViaAddr + ViaPort for ViaAddress, ObjectName
# "<aor>;@<hash>" for ID, and no AOR).
CONTACT_LIST_NAMES = {
    "Uri": "URI",
    "Endpoint": "EndpointName",
    "CallId": "CallID",
    "Aor": "AOR",
    "ExpirationTime": "RegExpire",
}
# ContactList fields that mean the same as in ContactStatusDetail and are written the same way;
# the others (QualifyTimeout "3.000000" vs "3.000", AuthenticateQualify "no" vs "0" …) are not.
CONTACT_LIST_SAME = frozenset(
    {
        "URI",
        "EndpointName",
        "AOR",
        "ID",
        "UserAgent",
        "RegExpire",
        "ViaAddress",
        "CallID",
        "Status",
        "RoundtripUsec",
        "Path",
        "OutboundProxy",
        "QualifyFrequency",
    }
)


def contact_from_list(item: AmiMessage) -> AmiMessage:
    """A ContactList item in ContactStatusDetail spelling."""
    contact = {CONTACT_LIST_NAMES.get(k, k): v for k, v in item.items()}
    if "ViaAddress" not in contact and contact.get("ViaAddr"):
        port = contact.get("ViaPort")
        contact["ViaAddress"] = f"{contact['ViaAddr']}:{port}" if port else contact["ViaAddr"]
    object_name = contact.get("ObjectName", "")
    if ";@" in object_name:
        contact.setdefault("ID", object_name)
        contact.setdefault("AOR", object_name.partition(";@")[0])
    return contact


def merge_listed_contact(known: AmiMessage | None, listed: AmiMessage) -> AmiMessage:
    """A contact as a new ContactList shows it, keeping what is known of it (from
    ContactStatusDetail or events) wherever the list has no field, or a differently written one:
    a resync then changes a contact only where Asterisk's view of it changed."""
    if known is None:
        return listed
    merged = {**known, **{k: v for k, v in listed.items() if k in CONTACT_LIST_SAME}}
    for key, value in listed.items():
        merged.setdefault(key, value)
    return merged


def status_of(device_state: str) -> Literal["online", "offline"]:
    """``online`` or ``offline`` from the device state alone."""
    return "online" if device_state in ONLINE_STATES else "offline"


def split_names(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def device_state_word(token: str) -> str:
    return DEVICE_STATE_WORDS.get(token, token.replace("_", " ").capitalize())


@dataclass(frozen=True)
class EndpointDetail:
    """What one PJSIPShowEndpoint told us, grouped by event."""

    endpoint: AmiMessage
    auths: tuple[AmiMessage, ...]
    outbound_auths: tuple[AmiMessage, ...]
    aors: tuple[AmiMessage, ...]
    contacts: tuple[AmiMessage, ...]
    fetched_at: float

    def same_content(self, other: EndpointDetail) -> bool:
        return self._content() == other._content()

    def _content(self) -> tuple[object, ...]:
        return (self.endpoint, self.auths, self.outbound_auths, self.aors, self.contacts)


# Fields the inventory itself needs, kept besides those pjsip_detail.ini selects.
OWN_FIELDS: dict[str, frozenset[str]] = {
    "EndpointList": frozenset({"ObjectName", "DeviceState", "Aor", "Auths", "OutboundAuths"}),
    "EndpointDetail": frozenset({"ObjectName", "Auth", "OutboundAuth", "Aors", "Callerid"}),
    "AuthDetail": frozenset({"ObjectName"}),
    "AorDetail": frozenset({"ObjectName"}),
    # what the history records of a contact, whatever pjsip_detail.ini shows
    "ContactStatusDetail": frozenset(
        {"URI", "EndpointName", "AOR", "Status", "UserAgent", "ViaAddress", "RoundtripUsec"}
        | {"RegExpire"}
    ),
}


class Keeper:
    """Trims AMI messages to the fields anyone reads: an EndpointDetail has ~150 headers, and
    keeping them all for 10,000 endpoints would cost hundreds of MB."""

    def __init__(self, fields: DetailFields | None) -> None:
        self._keep = {
            event: own | frozenset(fields.fields.get(event, ()) if fields else ())
            for event, own in OWN_FIELDS.items()
        }
        self._everything = fields is None

    def trim(self, event: str, message: AmiMessage) -> AmiMessage:
        if self._everything:
            return message
        keep = self._keep[event]
        return {k: v for k, v in message.items() if k in keep}


def group_detail(items: list[AmiMessage], keeper: Keeper | None = None) -> EndpointDetail | None:
    """The reply of one PJSIPShowEndpoint, grouped; None when it holds no EndpointDetail."""
    keeper = keeper or Keeper(None)
    endpoint = next((m for m in items if m.get("Event") == "EndpointDetail"), None)
    if endpoint is None:
        return None
    inbound = set(split_names(endpoint.get("Auth")))
    outbound = set(split_names(endpoint.get("OutboundAuth")))

    def of(event: str) -> list[AmiMessage]:
        return [keeper.trim(event, m) for m in items if m.get("Event") == event]

    auths = of("AuthDetail")
    return EndpointDetail(
        endpoint=keeper.trim("EndpointDetail", endpoint),
        auths=tuple(a for a in auths if a.get("ObjectName") in inbound),
        outbound_auths=tuple(a for a in auths if a.get("ObjectName") in outbound),
        aors=tuple(of("AorDetail")),
        contacts=tuple(of("ContactStatusDetail")),
        fetched_at=time.monotonic(),
    )


@dataclass
class Snapshot:
    """The bulk lists of one sync, kept current by events afterwards."""

    endpoints: dict[str, AmiMessage] = field(default_factory=dict)
    auths: dict[str, AmiMessage] = field(default_factory=dict)
    aors: dict[str, AmiMessage] = field(default_factory=dict)
    # endpoint -> URI -> contact, in ContactStatusDetail spelling (URI, EndpointName, AOR, ...)
    contacts: dict[str, dict[str, AmiMessage]] = field(default_factory=dict)
    device_states: dict[str, str] = field(default_factory=dict)  # endpoint -> words
