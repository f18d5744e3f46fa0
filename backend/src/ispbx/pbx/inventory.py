"""The in-memory inventory of one Asterisk's PJSIP endpoints, auths, AORs, contacts and device
states.

Data flows one way: AMI → inventory → read model. On every login the inventory takes a snapshot
with the bulk list actions (the "first full sync") and prefetches every endpoint's details;
afterwards events keep it current (ContactStatus, DeviceStateChange, PeerStatus). ``FullyBooted``
(Asterisk restarted under us) means another full sync; a pjsip ``Reload`` means the lists are taken
again and details re-fetched only for what changed (see :mod:`ispbx.pbx.sync`).

Readers use the query methods (``endpoint_names``, ``listing``, ``detail``, ``contacts``,
``device_state`` …), never the fields. ``changes`` tells listeners which endpoints changed (None:
possibly all of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

from ispbx.ami import AmiClient, AmiError, AmiMessage, AmiSession
from ispbx.backoff import Backoff
from ispbx.listeners import Listeners
from ispbx.pbx.detail import DetailFields
from ispbx.pbx.prefetch import DetailFetcher
from ispbx.pbx.state import (
    CONTACT_STATUS_WORDS,
    EndpointDetail,
    Keeper,
    Snapshot,
    device_state_word,
    group_detail,
    split_names,
)
from ispbx.pbx.sync import Fingerprints, endpoints_to_refresh, keep_known_contacts, take_snapshot
from ispbx.tasks import cancel_and_wait

log = logging.getLogger(__name__)
RESYNC_AFTER_WRITE = 1.0  # seconds of quiet after a write before its reload's resync
SYNC_RETRY_INITIAL = 0.5
SYNC_RETRY_CAP = 10.0
Changed = set[str] | None  # the endpoints that changed; None for all
FingerprintSource = Callable[[], Awaitable[Fingerprints]]


async def _no_fingerprints() -> Fingerprints:
    return {}


class Inventory:
    """Live PJSIP state from one AMI session. Read by the read model; written only by AMI."""

    def __init__(
        self,
        session: AmiSession,
        *,
        prefetch: bool = True,
        fields: DetailFields | None = None,
        fingerprints: FingerprintSource = _no_fingerprints,
    ) -> None:
        self._session = session
        self._keeper = Keeper(fields)
        self._fingerprint_source = fingerprints
        self._state = Snapshot()
        self._details: dict[str, EndpointDetail] = {}
        self._fingerprints: Fingerprints = {}
        self._synced = False
        self.sync_seconds: float | None = None
        self.changes: Listeners[Changed] = Listeners("inventory change")
        self._fetcher = DetailFetcher(
            session, self._keeper, self._store_detail, self._fetched_at, enabled=prefetch
        )
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_again = False
        self._full_pending = False
        self._syncing = False
        self._buffer: list[AmiMessage] = []
        self._login_booted_pending = False
        self._held = 0  # writers holding the reload-triggered resyncs back
        self._deferred: asyncio.Task[None] | None = None  # the resync after the last write
        self.resync_after_write = RESYNC_AFTER_WRITE

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._fetcher.start()

    async def stop(self) -> None:
        await cancel_and_wait(self._deferred)
        await cancel_and_wait(self._sync_task)
        await self._fetcher.stop()

    # -- queries (the read model's only way in) --------------------------------------------------

    @property
    def synced(self) -> bool:
        """A full snapshot has been taken at least once."""
        return self._synced

    @property
    def state(self) -> Snapshot:
        """The raw snapshot, for tests and diagnostics; readers use the query methods."""
        return self._state

    @property
    def prefetch_seconds(self) -> float | None:
        return self._fetcher.prefetch_seconds

    def endpoint_names(self) -> list[str]:
        """Endpoints loaded in Asterisk, in the order Asterisk listed them."""
        return list(self._state.endpoints)

    def endpoint_count(self) -> int:
        return len(self._state.endpoints)

    def has(self, name: str) -> bool:
        return name in self._state.endpoints

    def listing(self, name: str) -> AmiMessage | None:
        """The endpoint's EndpointList item (trimmed), without its device state."""
        return self._state.endpoints.get(name)

    def listed_aor(self, name: str) -> AmiMessage | None:
        """The endpoint's first AOR as PJSIPShowAors listed it."""
        listing = self._state.endpoints.get(name)
        names = split_names(listing.get("Aor")) if listing else []
        return self._state.aors.get(names[0]) if names else None

    def detail(self, name: str) -> EndpointDetail | None:
        """What the last PJSIPShowEndpoint of ``name`` said, if it ran."""
        return self._details.get(name)

    def contacts(self, name: str) -> list[AmiMessage]:
        return list(self._state.contacts.get(name, {}).values())

    def device_state(self, name: str) -> str:
        return self._state.device_states.get(name, "Unknown")

    def contact_status_counts(self) -> Counter[str]:
        """How many contacts have each status (Reachable, Unreachable, NonQualified …)."""
        return Counter(
            contact.get("Status", "Unknown")
            for contacts in self._state.contacts.values()
            for contact in contacts.values()
        )

    async def fetch_detail(self, name: str) -> EndpointDetail | None:
        """Fetch ``name``'s details now (≤ 2 s; shared with concurrent callers)."""
        return await self._fetcher.fetch(name)

    # -- syncs -----------------------------------------------------------------------------------

    async def on_login(self, client: AmiClient) -> None:
        """Every login starts with a full snapshot (the session awaits this hook)."""
        # Asterisk answers a login with FullyBooted before it reads our next action: that one is
        # covered by this sync. A FullyBooted after the first list reply means a (re)boot.
        self._login_booted_pending = True
        task = self.request_sync(full=True)
        if task is not None:
            await asyncio.shield(task)

    def request_sync(self, *, full: bool) -> asyncio.Task[None] | None:
        """Start a sync, or ask the running one to go round once more. ``full`` prefetches every
        endpoint's details afterwards; otherwise only those that changed are re-fetched."""
        if self._sync_task is not None and not self._sync_task.done():
            self._sync_again = True
            self._full_pending |= full
            return self._sync_task
        if self._session.client is None:
            return None  # the next login syncs in full anyway
        self._full_pending = full
        self._sync_task = asyncio.create_task(self._run_sync(), name="inventory-sync")
        return self._sync_task

    async def _run_sync(self) -> None:
        """Sync until a sync succeeds with nothing asked meanwhile; retry failures (e.g. lists
        sent while Asterisk was still loading its modules) with a growing pause."""
        backoff = Backoff(SYNC_RETRY_INITIAL, SYNC_RETRY_CAP, fast_for=0)
        try:
            while (client := self._session.client) is not None:
                self._syncing = True
                self._sync_again = False
                full, self._full_pending = self._full_pending or not self._synced, False
                if not await self._sync_once(client, full=full):
                    self._full_pending |= full
                    self._syncing = False
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if not self._sync_again:
                    return
        finally:
            self._syncing = False

    async def _sync_once(self, client: AmiClient, *, full: bool) -> bool:
        started = time.monotonic()
        self._buffer = []
        prints = await self._current_fingerprints()
        try:
            snapshot = await take_snapshot(client, self._keeper)
        except AmiError as exc:
            log.warning("inventory sync failed, retrying: %s", exc)
            return False
        finally:
            self._login_booted_pending = False
        old, old_prints = self._state, self._fingerprints
        keep_known_contacts(old, snapshot)
        self._state, self._fingerprints = snapshot, prints
        self._details = {k: v for k, v in self._details.items() if k in snapshot.endpoints}
        self._synced = True
        self.sync_seconds = time.monotonic() - started
        log.info(
            "inventory synced: %d endpoints in %.2f s", len(snapshot.endpoints), self.sync_seconds
        )
        self._replay_buffer()
        self.changes.emit(None)
        if full:
            self._fetcher.prefetch_all(snapshot.endpoints)
        else:
            for name in sorted(endpoints_to_refresh(old, snapshot, old_prints, prints)):
                self._fetcher.mark_dirty(name)
        return True

    async def _current_fingerprints(self) -> Fingerprints:
        try:
            return await self._fingerprint_source()
        except Exception:  # the file side must not stop a sync; every detail is then refreshed
            log.exception("reading the configuration's fingerprints failed")
            return {}

    def _replay_buffer(self) -> None:
        buffered, self._buffer = self._buffer, []
        self._syncing = False
        for message in buffered:
            self._apply_event(message)

    @contextlib.asynccontextmanager
    async def resyncs_held(self) -> AsyncIterator[None]:
        """A writer reloads Asterisk and reads its objects back meanwhile: the resync its reload
        sets off waits (AMI answers one action at a time: five big lists would queue before the
        read-back) and runs ``resync_after_write`` seconds after the writer is done, whether
        Asterisk's Reload event came during the write or just after it. A burst of writes (a
        script, a form saved twice) so costs one resync, and the lists never compete with the
        next write."""
        self._held += 1
        if self._deferred is not None and not self._deferred.done():
            self._deferred.cancel()  # folded into the resync after this write
        try:
            yield
        finally:
            self._held -= 1
            if not self._held:
                self._deferred = asyncio.create_task(
                    self._resync_later(), name="inventory-resync-after-write"
                )

    def _resync_deferred(self) -> bool:
        """A write holds the resync, or one is due shortly after it: a Reload now folds in."""
        return bool(self._held) or (self._deferred is not None and not self._deferred.done())

    async def _resync_later(self) -> None:
        await asyncio.sleep(self.resync_after_write)
        self.request_sync(full=False)

    # -- events --------------------------------------------------------------------------------

    def on_event(self, message: AmiMessage) -> None:
        name = message.get("Event", "")
        if name == "FullyBooted":
            if not self._login_booted_pending:
                self.request_sync(full=True)
            return
        if name == "Reload":
            module = message.get("Module", "").lower()
            # Status 0 is a finished reload; 4 ("in progress") and the rest change nothing.
            done = message.get("Status", "0") == "0"
            pjsip = "pjsip" in module or module in {"", "all"}
            if done and pjsip and not self._resync_deferred():
                self.request_sync(full=False)
            return
        if self._syncing:
            self._buffer.append(message)
            return
        changed = self._apply_event(message)
        if changed:
            self.changes.emit({changed})

    def _apply_event(self, message: AmiMessage) -> str | None:
        """Apply one event; the endpoint whose listing changed, if any."""
        name = message.get("Event", "")
        if name == "DeviceStateChange":
            return self._apply_device_state(message)
        if name == "ContactStatus":
            return self._apply_contact_status(message)
        if name == "PeerStatus":
            self._fetcher.mark_dirty(message.get("Peer", "").removeprefix("PJSIP/"))
        return None

    def _apply_device_state(self, message: AmiMessage) -> str | None:
        device = message.get("Device", "")
        if not device.startswith("PJSIP/"):
            return None
        endpoint = device.removeprefix("PJSIP/")
        word = device_state_word(message.get("State", "UNKNOWN"))
        if self._state.device_states.get(endpoint) == word:
            return None
        self._state.device_states[endpoint] = word
        return endpoint

    def _apply_contact_status(self, message: AmiMessage) -> str | None:
        endpoint, uri = message.get("EndpointName", ""), message.get("URI", "")
        contacts = self._state.contacts.setdefault(endpoint, {})
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
        self._fetcher.mark_dirty(endpoint)
        return endpoint

    # -- what a write read back --------------------------------------------------------------

    def accept_readback(self, name: str, items: list[AmiMessage] | None) -> None:
        """A write just read ``name`` back from Asterisk (None: it is gone): take it now rather
        than at the end of the resync its reload sets off, so the API shows it at once."""
        if items is None:
            self._state.endpoints.pop(name, None)
            self._details.pop(name, None)
            self._state.contacts.pop(name, None)
            self.changes.emit({name})
            return
        detail = group_detail(items, self._keeper)
        if detail is None:
            return
        endpoint = next(m for m in items if m.get("Event") == "EndpointDetail")
        listing = {
            "ObjectType": "endpoint",
            "ObjectName": name,
            "Transport": endpoint.get("Transport", ""),
            "Aor": endpoint.get("Aors", ""),
            "Auths": endpoint.get("Auth", ""),
            "OutboundAuths": endpoint.get("OutboundAuth", ""),
            "DeviceState": endpoint.get("DeviceState", "Unknown"),
        }
        self._state.endpoints[name] = self._keeper.trim("EndpointList", listing)
        self._state.device_states.setdefault(name, listing["DeviceState"])
        for aor in detail.aors:
            self._state.aors[aor.get("ObjectName", "")] = aor
        self._store_detail(name, detail)
        self.changes.emit({name})

    # -- details -------------------------------------------------------------------------------

    def _fetched_at(self, name: str) -> float | None:
        detail = self._details.get(name)
        return detail.fetched_at if detail else None

    def _store_detail(self, name: str, detail: EndpointDetail) -> None:
        old = self._details.get(name)
        self._details[name] = detail
        changed = old is None or not old.same_content(detail)
        contacts = {c.get("URI", ""): dict(c) for c in detail.contacts}
        if contacts != self._state.contacts.get(name, {}):
            self._state.contacts[name] = contacts
            changed = True
        if changed:
            self.changes.emit({name})
