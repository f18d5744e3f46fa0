"""One Asterisk as a unit: its AMI session, config store, inventory, read model, list publisher
and history feed.

:meth:`Pbx._wire` is the one place where the parts are connected, so the whole event path reads
top to bottom there.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from datetime import timedelta

from ispbx.ami import AmiSession
from ispbx.history.flapping import FlapTransition
from ispbx.history.service import History
from ispbx.listeners import Unsubscribe
from ispbx.manage.files import Journal
from ispbx.manage.service import ManageService
from ispbx.metrics.pbxmetrics import PbxMetrics
from ispbx.pbx.detail import DetailFields
from ispbx.pbx.history import PbxHistory
from ispbx.pbx.inventory import Inventory
from ispbx.pbx.readmodel import ReadModel
from ispbx.pbx.snapshot import ListPublisher
from ispbx.pbx.sync import Fingerprints, config_fingerprints
from ispbx.pjsip.store import ConfigStore, ConfigView
from ispbx.security.redact import redact_text
from ispbx.settings import PbxSettings

log = logging.getLogger(__name__)


class Pbx:
    def __init__(
        self,
        config: PbxSettings,
        fields: DetailFields,
        history: History,
        *,
        flap_changes: int = 4,
        flap_window: timedelta = timedelta(minutes=10),
    ) -> None:
        self.id = config.id
        self.session = AmiSession(config.ami)
        self.store = ConfigStore(config.pjsip_conf)
        self.inventory = Inventory(self.session, fields=fields, fingerprints=self._fingerprints)
        self.history = PbxHistory(
            config.id,
            self.inventory,
            history.recorder,
            flap_changes=flap_changes,
            flap_window=flap_window,
        )
        self.readmodel = ReadModel(
            self.inventory, self.store, fields, self.session, self.history.flapping
        )
        self.publisher = ListPublisher(self.readmodel)
        self.manage = ManageService(
            config.id,
            self.session,
            self.store,
            self.inventory,
            history,
            managed=config.managed_conf,
            journal=Journal(config.journal),
        )
        self.metrics = PbxMetrics(self.id, self.inventory)
        self._unsubscribe: list[Unsubscribe] = []
        self._prints: tuple[int, dict[str, Hashable]] | None = None

    def _wire(self) -> list[Unsubscribe]:
        """Every subscription between the parts, in the order data flows.

        An AMI event: the AmiClient parses it → ``session.events`` → ``inventory.on_event``
        applies it to the snapshot → ``inventory.changes`` names the endpoints that changed →
        the history records what really changed (and counts flaps), and
        ``publisher.endpoints_changed`` rebuilds just those rows (debounced), diffs them and
        appends the changed rows to the feed that every ``/events`` stream reads.
        A login: ``session.logins`` → ``inventory.on_login`` takes a full snapshot (awaited).
        A pjsip Reload event: ``inventory.on_event`` resyncs the lists and re-fetches the details
        of what changed, comparing the configuration through :meth:`_fingerprints`.
        A pjsip.conf edit: ``store.changes`` → every row is rebuilt (presence in the file), the
        view is logged and recorded as a config load.
        AMI up or down: ``session.states`` → the envelope (``ami_connected``, ``stale_since``) and
        a session event in the history.
        Flapping starts or stops: ``history.flapping_changed`` → the row and a ``flapping`` event.
        A write applied: ``manage.applied`` → the list is rebuilt before the write answers.
        /metrics counts ContactStatus events (``session.events``, before the inventory applies
        them, so it can tell a new contact) and keeps its per-endpoint lines and online/offline
        transitions from ``inventory.changes``; each audited write (``manage.attempted``) is
        counted by result, with its time to confirmation.
        """
        return [
            self.session.logins.add(self.inventory.on_login),
            self.session.events.add(self.metrics.on_ami_event),  # first: sees the state before
            self.session.events.add(self.inventory.on_event),
            self.inventory.changes.add(self.history.endpoints_changed),
            self.inventory.changes.add(self.publisher.endpoints_changed),
            self.store.changes.add(self.publisher.config_changed),
            self.store.changes.add(log_config_view),
            self.store.changes.add(self.history.config_view),
            self.session.states.add(self.publisher.envelope_changed),
            self.session.states.add(self.history.ami_state),
            self.history.flapping_changed.add(self._flapping_changed),
            # a write answers once the list shows it (read your writes)
            self.manage.applied.add(lambda _outcome: self.publisher.rebuild_now()),
            self.inventory.changes.add(self.metrics.endpoints_changed),
            self.manage.attempted.add(self.metrics.writes.attempted),
        ]

    async def start(self) -> None:
        self._unsubscribe = self._wire()
        await self.manage.recover()  # a write cut short by a crash is undone before reading
        await self.store.reload()
        self.publisher.start()
        self.store.start()
        self.inventory.start()
        self.history.start()
        self.session.start()  # never waits for AMI: connects in the background

    async def stop(self) -> None:
        await self.session.stop()
        await self.inventory.stop()
        await self.history.stop()
        await self.store.stop()
        await self.publisher.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def _flapping_changed(self, transition: FlapTransition) -> None:
        self.publisher.endpoints_changed({transition.endpoint})
        self.publisher.announce(
            "flapping", {"extension": transition.endpoint, "flapping": transition.started}
        )

    async def _fingerprints(self) -> Fingerprints:
        """What pjsip.conf says of each endpoint, read afresh: Asterisk has just reloaded it."""
        view = await self.store.refresh()
        if self._prints is None or self._prints[0] != view.version:
            self._prints = (view.version, config_fingerprints(view.config))
        return self._prints[1]


def log_config_view(view: ConfigView) -> None:
    """One log line per new error, and the reader's warnings of each new good parse."""
    if view.error is not None:
        log.error("pjsip.conf not loaded, keeping the last good view: %s", redact_text(view.error))
        return
    for warning in view.warnings:
        log.warning("pjsip.conf: %s", redact_text(warning))
