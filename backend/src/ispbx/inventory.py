"""The in-memory inventory of PJSIP endpoints, auths, AORs, contacts and device states.

Data flows one way: AMI → inventory → routes. On every login the inventory takes a snapshot with the
bulk list actions (the "first full sync"); afterwards events keep it current (ContactStatus,
DeviceStateChange, PeerStatus) and FullyBooted/Reload trigger a full resync. Fields that only
PJSIPShowEndpoint carries (Context, Callerid, auth/AOR/contact details) come from a background
prefetch that walks every endpoint once after each sync and refreshes an endpoint whenever an event
says it changed. Requests never run a list action; a request for an endpoint whose details are not
fetched yet runs one bounded PJSIPShowEndpoint, shared by concurrent requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ispbx.ami import AmiClient, AmiError, AmiMessage, AmiSession
from ispbx.detail import DetailFields
from ispbx.tasks import cancel_and_wait

log = logging.getLogger(__name__)

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
EMPTY_LIST_MESSAGES = ("No endpoints found", "No Auths found", "No AORs found", "No Contacts found")
DETAIL_TIMEOUT = 2.0
LIST_TIMEOUT = 30.0
SYNC_RETRY_INITIAL = 0.5
SYNC_RETRY_CAP = 10.0
DETAIL_PIPELINE = 4  # PJSIPShowEndpoint actions in flight during the prefetch


# ContactStatus events say "Created"/"Updated" where ContactStatusDetail says the status.
CONTACT_STATUS_WORDS = {"Created": "Unknown", "Updated": "Unknown"}
# ContactList spells some ContactStatusDetail fields differently.
CONTACT_LIST_NAMES = {"Uri": "URI", "Endpoint": "EndpointName", "CallId": "CallID", "Aor": "AOR"}


def contact_from_list(item: AmiMessage) -> AmiMessage:
    """A ContactList item in ContactStatusDetail spelling."""
    return {CONTACT_LIST_NAMES.get(k, k): v for k, v in item.items()}


def status_of(device_state: str) -> str:
    """``online`` or ``offline`` from the device state alone."""
    return "online" if device_state in ONLINE_STATES else "offline"


def split_names(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@dataclass(frozen=True)
class EndpointDetail:
    """What one PJSIPShowEndpoint told us, grouped by event."""

    endpoint: AmiMessage
    auths: tuple[AmiMessage, ...]
    outbound_auths: tuple[AmiMessage, ...]
    aors: tuple[AmiMessage, ...]
    contacts: tuple[AmiMessage, ...]
    fetched_at: float


# Fields the inventory itself needs, kept besides those pjsip_detail.ini selects.
OWN_FIELDS: dict[str, frozenset[str]] = {
    "EndpointList": frozenset({"ObjectName", "DeviceState", "Aor", "Auths", "OutboundAuths"}),
    "EndpointDetail": frozenset({"ObjectName", "Auth", "OutboundAuth", "Aors", "Callerid"}),
    "AuthDetail": frozenset({"ObjectName"}),
    "AorDetail": frozenset({"ObjectName"}),
    "ContactStatusDetail": frozenset({"URI", "EndpointName", "AOR"}),
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
    endpoints: dict[str, AmiMessage] = field(default_factory=dict)
    auths: dict[str, AmiMessage] = field(default_factory=dict)
    aors: dict[str, AmiMessage] = field(default_factory=dict)
    # endpoint -> URI -> contact, in ContactStatusDetail spelling (URI, EndpointName, AOR, ...)
    contacts: dict[str, dict[str, AmiMessage]] = field(default_factory=dict)
    device_states: dict[str, str] = field(default_factory=dict)  # endpoint -> words


class Inventory:
    """Live PJSIP state from one AMI session. Read by routes; written only by AMI."""

    def __init__(
        self, session: AmiSession, *, prefetch: bool = True, fields: DetailFields | None = None
    ) -> None:
        self._session = session
        self._keeper = Keeper(fields)
        self._prefetch_enabled = prefetch
        self.state = Snapshot()
        self.details: dict[str, EndpointDetail] = {}
        self.synced = False
        self.version = 0
        self.sync_seconds: float | None = None
        self.prefetch_seconds: float | None = None
        self._listeners: list[Callable[[set[str] | None], None]] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_again = False
        self._syncing = False
        self._buffer: list[AmiMessage] = []
        self._worker: asyncio.Task[None] | None = None
        self._dirty: dict[str, None] = {}  # ordered set
        self._prefetch_queue: list[str] = []
        self._wake = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[EndpointDetail | None]] = {}
        self._prefetch_started = 0.0
        self._login_booted_pending = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._unsubscribe = [
            self._session.add_login_hook(self._on_login),
            self._session.add_event_listener(self.on_event),
        ]
        self._worker = asyncio.create_task(self._detail_worker(), name="inventory-details")

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        await cancel_and_wait(self._sync_task, self._worker, *self._inflight.values())

    def add_listener(self, callback: Callable[[set[str] | None], None]) -> Callable[[], None]:
        """``callback(names)`` after each change: the endpoints that changed, None for all."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def _changed(self, names: set[str] | None = None) -> None:
        self.version += 1
        for listener in list(self._listeners):
            listener(names)

    # -- full sync -----------------------------------------------------------------------------

    async def _on_login(self, client: AmiClient) -> None:
        """Every login starts with a full snapshot (the session awaits this hook)."""
        # Asterisk answers a login with FullyBooted before it reads our next action: that one is
        # covered by this sync. A FullyBooted after the first list reply means a (re)boot.
        self._login_booted_pending = True
        task = self.request_sync()
        if task is not None:
            await asyncio.shield(task)

    def request_sync(self) -> asyncio.Task[None] | None:
        """Start a full sync, or ask the running one to go round once more."""
        if self._sync_task is not None and not self._sync_task.done():
            self._sync_again = True
            return self._sync_task
        if self._session.client is None:
            return None
        self._sync_task = asyncio.create_task(self._run_sync(), name="inventory-sync")
        return self._sync_task

    async def _run_sync(self) -> None:
        """Sync until a sync succeeds with nothing asked meanwhile; retry failures (e.g. lists
        sent while Asterisk was still loading its modules) with a growing pause."""
        retry = SYNC_RETRY_INITIAL
        try:
            while (client := self._session.client) is not None:
                self._syncing = True
                self._sync_again = False
                if not await self._sync_once(client):
                    self._syncing = False
                    await asyncio.sleep(retry)
                    retry = min(retry * 2, SYNC_RETRY_CAP)
                    continue
                if not self._sync_again:
                    return
        finally:
            self._syncing = False

    async def _sync_once(self, client: AmiClient) -> bool:
        started = time.monotonic()
        self._buffer = []
        try:
            snapshot = await self._take_snapshot(client)
        except AmiError as exc:
            log.warning("inventory sync failed, retrying: %s", exc)
            return False
        self.state = snapshot
        self.details = {k: v for k, v in self.details.items() if k in snapshot.endpoints}
        self.synced = True
        self.sync_seconds = time.monotonic() - started
        log.info(
            "inventory synced: %d endpoints in %.2f s", len(snapshot.endpoints), self.sync_seconds
        )
        buffered, self._buffer = self._buffer, []
        self._syncing = False
        for message in buffered:
            self._apply_event(message)
        self._changed(None)
        self._start_prefetch(list(snapshot.endpoints))
        return True

    async def _take_snapshot(self, client: AmiClient) -> Snapshot:
        snap = Snapshot()
        trim = self._keeper.trim
        endpoints = await self._list(client, "PJSIPShowEndpoints")
        self._login_booted_pending = False
        for item in endpoints:
            name = item.get("ObjectName", "")
            snap.endpoints[name] = trim("EndpointList", item)
            snap.device_states[name] = item.get("DeviceState", "Unknown")
        for item in await self._list(client, "PJSIPShowAuths"):
            snap.auths[item.get("ObjectName", "")] = trim("AuthDetail", item)
        for item in await self._list(client, "PJSIPShowAors"):
            snap.aors[item.get("ObjectName", "")] = trim("AorDetail", item)
        for item in await self._list(client, "PJSIPShowContacts"):
            contact = trim("ContactStatusDetail", contact_from_list(item))
            snap.contacts.setdefault(contact["EndpointName"], {})[contact["URI"]] = contact
        for item in await self._list(client, "DeviceStateList"):
            self._apply_device_state(snap, item)
        return snap

    @staticmethod
    async def _list(client: AmiClient, action: str) -> list[AmiMessage]:
        items = await client.list_action({"Action": action}, timeout=LIST_TIMEOUT)
        return [m for m in items if "Event" in m]

    # -- events --------------------------------------------------------------------------------

    def on_event(self, message: AmiMessage) -> None:
        name = message.get("Event", "")
        if name == "FullyBooted":
            if not self._login_booted_pending:
                self.request_sync()
            return
        if name == "Reload":
            module = message.get("Module", "").lower()
            if "pjsip" in module or module in {"", "all"}:
                self.request_sync()
            return
        if self._syncing:
            self._buffer.append(message)
            return
        changed = self._apply_event(message)
        if changed:
            self._changed({changed})

    def _apply_event(self, message: AmiMessage) -> str | None:
        """Apply one event; the endpoint whose listing changed, if any."""
        name = message.get("Event", "")
        if name == "DeviceStateChange":
            return self._apply_device_state(self.state, message)
        if name == "ContactStatus":
            return self._apply_contact_status(message)
        if name == "PeerStatus":
            self._mark_dirty(message.get("Peer", "").removeprefix("PJSIP/"))
        return None

    @staticmethod
    def _apply_device_state(snap: Snapshot, message: AmiMessage) -> str | None:
        device = message.get("Device", "")
        if not device.startswith("PJSIP/"):
            return None
        endpoint = device.removeprefix("PJSIP/")
        token = message.get("State", "UNKNOWN")
        word = DEVICE_STATE_WORDS.get(token, token.replace("_", " ").capitalize())
        if snap.device_states.get(endpoint) == word:
            return None
        snap.device_states[endpoint] = word
        return endpoint

    def _apply_contact_status(self, message: AmiMessage) -> str | None:
        endpoint, uri = message.get("EndpointName", ""), message.get("URI", "")
        contacts = self.state.contacts.setdefault(endpoint, {})
        status = message.get("ContactStatus", "")
        if status == "Removed":
            contacts.pop(uri, None)
        else:
            contact = contacts.get(uri)
            if contact is None:
                contact = contacts[uri] = {
                    "URI": uri,
                    "EndpointName": endpoint,
                    "AOR": message.get("AOR", ""),
                    "Status": CONTACT_STATUS_WORDS.get(status, status),
                }
            elif status not in CONTACT_STATUS_WORDS:  # Created/Updated say nothing of reachability
                contact["Status"] = status
            if "RoundtripUsec" in message:
                contact["RoundtripUsec"] = message["RoundtripUsec"]
        self._mark_dirty(endpoint)
        return endpoint

    # -- details -------------------------------------------------------------------------------

    def _start_prefetch(self, names: list[str]) -> None:
        if not self._prefetch_enabled:
            return
        self._prefetch_started = time.monotonic()
        self.prefetch_seconds = None
        self._prefetch_queue = list(reversed(names))
        self._wake.set()

    def _mark_dirty(self, endpoint: str) -> None:
        if endpoint:
            self._dirty[endpoint] = None
            self._wake.set()

    async def _detail_worker(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # A few requests in flight: Asterisk answers one action at a time per connection,
            # but pipelining hides the round trip between them.
            try:
                await asyncio.gather(*(self._drain() for _ in range(DETAIL_PIPELINE)))
            except Exception:  # a bug must not stop detail updates for good
                log.exception("detail fetching failed; carrying on")
                await asyncio.sleep(1)
            if not self._prefetch_queue and self.prefetch_seconds is None and self.synced:
                self.prefetch_seconds = time.monotonic() - self._prefetch_started
                log.info("detail prefetch done in %.2f s", self.prefetch_seconds)

    async def _drain(self) -> None:
        while self._session.client is not None and (name := self._next_name()) is not None:
            await self.fetch_detail(name)

    def _next_name(self) -> str | None:
        if self._dirty:
            name = next(iter(self._dirty))
            del self._dirty[name]
            return name
        while self._prefetch_queue:
            name = self._prefetch_queue.pop()
            detail = self.details.get(name)
            if detail is None or detail.fetched_at < self._prefetch_started:
                return name
        return None

    async def fetch_detail(self, name: str) -> EndpointDetail | None:
        """One PJSIPShowEndpoint (≤ 2 s), shared by concurrent callers for the same name."""
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.create_task(self._fetch_detail(name))
            self._inflight[name] = task
            task.add_done_callback(lambda _t: self._inflight.pop(name, None))
        return await asyncio.shield(task)

    async def _fetch_detail(self, name: str) -> EndpointDetail | None:
        try:
            items = await self._session.list_action(
                {"Action": "PJSIPShowEndpoint", "Endpoint": name}, timeout=DETAIL_TIMEOUT
            )
        except AmiError as exc:
            log.debug("PJSIPShowEndpoint %s: %s", name, exc)
            return None
        detail = group_detail(items, self._keeper)
        if detail is None:
            return None
        old = self.details.get(name)
        self.details[name] = detail
        contacts = {c.get("URI", ""): dict(c) for c in detail.contacts}
        changed = old is None or _differs(old, detail)
        if contacts != self.state.contacts.get(name, {}):
            self.state.contacts[name] = contacts
            changed = True
        if changed:
            self._changed({name})
        return detail

    # -- reads (used by routes) ------------------------------------------------------------------

    def device_state(self, name: str) -> str:
        return self.state.device_states.get(name, "Unknown")

    def contacts_of(self, name: str) -> list[AmiMessage]:
        return list(self.state.contacts.get(name, {}).values())

    def callerid(self, name: str) -> str | None:
        detail = self.details.get(name)
        return detail.endpoint.get("Callerid") if detail else None


def _differs(old: EndpointDetail, new: EndpointDetail) -> bool:
    def strip(d: EndpointDetail) -> tuple[object, ...]:
        return (d.endpoint, d.auths, d.outbound_auths, d.aors, d.contacts)

    return strip(old) != strip(new)


def lower_keys(message: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in message.items()}
