"""What one PBX puts into the history database, and which of its endpoints flap.

Fed by ``Pbx._wire``: the inventory's changes become registration, reachability, RTT and device
state events (only real changes: a resync that changes nothing records nothing), AMI up/down
become session events, each new pjsip.conf view a config load. Everything goes to the recorder,
which never blocks. Registration/reachability changes also feed the flap detector; when an
endpoint starts or stops flapping, ``flapping_changed`` names it (its row changes, and the
``/events`` stream gets a ``flapping`` event).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from ispbx.ami import AmiState
from ispbx.history.changes import ChangeDetector
from ispbx.history.events import EventKind, HistoryEvent, utc_now
from ispbx.history.flapping import FlapDetector, FlapTransition
from ispbx.history.recorder import HistoryRecorder
from ispbx.listeners import Listeners
from ispbx.pbx.inventory import Changed, Inventory
from ispbx.pjsip.store import ConfigView
from ispbx.tasks import cancel_and_wait

log = logging.getLogger(__name__)
TICK_SECONDS = 5.0  # how often a quiet flapping endpoint is checked for the end of its flapping
# A ContactStatus event names a contact but not its user agent or address; the detail fetch it
# sets off brings them within milliseconds. Wait that long (at most) to record the whole contact.
DETAIL_WAIT = 1.0
HUNG_MARKERS = ("not answering", "keepalive")


class PbxHistory:
    def __init__(
        self,
        pbx_id: str,
        inventory: Inventory,
        recorder: HistoryRecorder,
        *,
        flap_changes: int,
        flap_window: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.pbx_id = pbx_id
        self._inventory = inventory
        self._recorder = recorder
        self._clock = clock
        self._changes = ChangeDetector(pbx_id, clock=clock)
        self._flaps = FlapDetector(flap_changes, flap_window, clock=clock)
        self.flapping_changed: Listeners[FlapTransition] = Listeners("flapping change")
        self._ever_connected = False
        self._tick_seconds = max(0.2, min(TICK_SECONDS, flap_window.total_seconds() / 4))
        self._task: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.TimerHandle] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._tick(), name=f"flapping-{self.pbx_id}")

    async def stop(self) -> None:
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        await cancel_and_wait(self._task)

    def flapping(self, endpoint: str) -> bool:
        return self._flaps.flapping(endpoint)

    def flapping_count(self) -> int:
        return len(self._flaps.flapping_endpoints())

    def flapping_endpoints(self) -> frozenset[str]:
        """The endpoints flapping now (for /metrics)."""
        return self._flaps.flapping_endpoints()

    # -- listeners (wired by Pbx) --------------------------------------------------------------

    def endpoints_changed(self, names: Changed) -> None:
        """Inventory listener: record what really changed for these endpoints (None: all)."""
        if names is None:
            names = set(self._inventory.endpoint_names()) | self._changes.endpoints()
        for name in names:
            self._observe(name, wait_for_detail=True)

    def _observe(self, name: str, *, wait_for_detail: bool) -> None:
        inventory = self._inventory
        contacts = (
            {c.get("URI", ""): c for c in inventory.contacts(name)} if inventory.has(name) else None
        )
        if wait_for_detail and contacts and any("UserAgent" not in c for c in contacts.values()):
            if name not in self._waiting:
                self._waiting[name] = asyncio.get_running_loop().call_later(
                    DETAIL_WAIT, self._waited, name
                )
            return
        handle = self._waiting.pop(name, None)
        if handle is not None:
            handle.cancel()
        events = self._changes.observe(name, contacts, inventory.device_state(name))
        if events:
            self._recorder.record_many(events)
            self._flapped(self._flaps.note_events(events))

    def _waited(self, name: str) -> None:
        """The detail did not come (AMI busy or gone): record what is known."""
        self._waiting.pop(name, None)
        self._observe(name, wait_for_detail=False)

    def ami_state(self, state: AmiState) -> None:
        """Session listener: connected / reconnected / lost / hung."""
        if state.connected:
            kind = EventKind.AMI_RECONNECTED if self._ever_connected else EventKind.AMI_CONNECTED
            self._ever_connected = True
            self._pbx_event(kind, {"address": f"{state.host}:{state.port}"})
            return
        error = state.last_error or ""
        hung = any(marker in error.lower() for marker in HUNG_MARKERS)
        self._pbx_event(EventKind.AMI_HUNG if hung else EventKind.AMI_LOST, {"message": error})

    def config_view(self, view: ConfigView) -> None:
        """Config store listener: a good load (with its warning count) or a rejected one."""
        if view.error is not None:
            self._pbx_event(EventKind.CONFIG_REJECTED, {"message": view.error})
        else:
            self._pbx_event(EventKind.CONFIG_LOADED, {"warnings": len(view.warnings)})

    # -- internals -----------------------------------------------------------------------------

    def _pbx_event(self, kind: EventKind, data: dict[str, object]) -> None:
        self._recorder.record(HistoryEvent(self.pbx_id, None, kind, self._clock(), data))

    def _flapped(self, transitions: list[FlapTransition]) -> None:
        for transition in transitions:
            self._recorder.record(transition.event(self.pbx_id))
            state = "started" if transition.started else "stopped"
            log.info("endpoint %s %s flapping", transition.endpoint, state)
            self.flapping_changed.emit(transition)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
            self._flapped(self._flaps.tick())
