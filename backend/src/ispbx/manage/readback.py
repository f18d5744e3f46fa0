"""Reading back what Asterisk loaded, and comparing it with what a change meant.

A successful ``Reload`` only says that Asterisk ran the reload; an object with a bad value is
simply not (re)created, or keeps its old version. So after every write the changed objects are
read with PJSIPShowEndpoint (endpoint, auths, AORs in one action) and each option the change set
is compared, in Asterisk's own spelling (:func:`ispbx.pjsip.shown.shown_value`), with what
Asterisk reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ispbx.ami import AmiError, AmiMessage, AmiSession
from ispbx.pjsip.shown import ami_header

READBACK_TIMEOUT = 5.0
EVENTS = {"endpoint": "EndpointDetail", "auth": "AuthDetail", "aor": "AorDetail"}
ObjectKey = tuple[str, str]  # (type, id)


@dataclass(frozen=True)
class Mismatch:
    object_type: str
    object_id: str
    option: str
    expected: str | None  # None: the object should not exist
    actual: str | None  # None: Asterisk has no such object (or no such field)

    def describe(self) -> str:
        where = f"{self.object_type} {self.object_id}"
        if not self.option:
            state = "is missing" if self.actual is None else "still exists"
            return f"{where} {state} in Asterisk after the reload"
        return f"{where}: {self.option} is {self.actual!r} in Asterisk, not {self.expected!r}"


async def read_endpoint(session: AmiSession, name: str) -> list[AmiMessage] | None:
    """Everything PJSIPShowEndpoint says of ``name`` (None: Asterisk has no such endpoint)."""
    try:
        items = await session.list_action(
            {"Action": "PJSIPShowEndpoint", "Endpoint": name}, timeout=READBACK_TIMEOUT
        )
    except AmiError as exc:
        if "unable to retrieve" in str(exc).lower():
            return None
        raise
    return items if any(i.get("Event") == "EndpointDetail" for i in items) else None


def objects_of(items: list[AmiMessage]) -> dict[ObjectKey, AmiMessage]:
    found: dict[ObjectKey, AmiMessage] = {}
    for object_type, event in EVENTS.items():
        for item in items:
            if item.get("Event") == event:
                found.setdefault((object_type, item.get("ObjectName", "")), item)
    return found


def compare(
    expected: Mapping[ObjectKey, Mapping[str, str] | None], items: list[AmiMessage] | None
) -> list[Mismatch]:
    """Each expected object (None: it must be gone) against what Asterisk reported."""
    loaded = objects_of(items or [])
    mismatches: list[Mismatch] = []
    for (object_type, object_id), options in expected.items():
        actual = loaded.get((object_type, object_id))
        if options is None:
            if actual is not None:
                mismatches.append(Mismatch(object_type, object_id, "", None, "present"))
            continue
        if actual is None:
            mismatches.append(Mismatch(object_type, object_id, "", "present", None))
            continue
        for option, value in options.items():
            got = actual.get(ami_header(option))
            if got != value:
                mismatches.append(Mismatch(object_type, object_id, option, value, got))
    return mismatches
