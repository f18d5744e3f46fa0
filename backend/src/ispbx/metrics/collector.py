"""The fleet-level families, built from live state at scrape time through prometheus_client.

One :class:`IspbxCollector` per app reads every PBX through its query API (session state and
stats, inventory, config store view, list publisher, the PBX's activity counters) and the HTTP
middleware's counters. Nothing is cached: a family describes what is true at the scrape.
Every series about a PBX carries ``pbx``; the HTTP series describe the service itself (its routes
serve every PBX) and have none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ispbx import __version__
from ispbx.metrics.http import HttpStats
from ispbx.pbx.pbx import Pbx

Pbxes = Callable[[], Mapping[str, Pbx]]


def is_live(pbx: Pbx) -> bool:
    """The inventory describes the present: AMI is up and a full snapshot has been taken."""
    return pbx.session.state.connected and pbx.inventory.synced


class IspbxCollector:
    def __init__(self, pbxes: Pbxes, http: HttpStats) -> None:
        self._pbxes = pbxes
        self._http = http

    def collect(self) -> Iterator[Metric]:
        pbxes = list(self._pbxes().items())
        yield from self._ami(pbxes)
        yield from self._inventory(pbxes)
        yield from self._contacts(pbxes)
        yield from self._activity(pbxes)
        yield from self._config(pbxes)
        yield from self._writes(pbxes)
        sse = GaugeMetricFamily("ispbx_sse_subscribers", "Open /events streams", labels=["pbx"])
        for pbx_id, pbx in pbxes:
            sse.add_metric([pbx_id], pbx.publisher.subscriber_count)
        yield sse
        yield from self._http.families()
        info = GaugeMetricFamily("ispbx_build_info", "The service's version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info

    def _ami(self, pbxes: list[tuple[str, Pbx]]) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "ispbx_ami_up", "1 while the AMI session is logged in", labels=["pbx"]
        )
        since = GaugeMetricFamily(
            "ispbx_ami_last_change_timestamp_seconds",
            "When the AMI session last went up or down (Unix time)",
            labels=["pbx"],
        )
        reconnects = CounterMetricFamily(
            "ispbx_ami_reconnects",
            "AMI logins after the first one (each a lost connection made again)",
            labels=["pbx"],
        )
        events = CounterMetricFamily(
            "ispbx_ami_events", "AMI events received, over every connection", labels=["pbx"]
        )
        actions = CounterMetricFamily(
            "ispbx_ami_actions",
            "AMI actions written, by action, over every connection",
            labels=["pbx", "action"],
        )
        for pbx_id, pbx in pbxes:
            state, stats = pbx.session.state, pbx.session.stats
            up.add_metric([pbx_id], 1 if state.connected else 0)
            since.add_metric([pbx_id], state.since.timestamp())
            reconnects.add_metric([pbx_id], stats.reconnects)
            events.add_metric([pbx_id], stats.events)
            for action, count in sorted(stats.actions.items()):
                actions.add_metric([pbx_id, action], count)
        yield from (up, since, reconnects, events, actions)

    def _inventory(self, pbxes: list[tuple[str, Pbx]]) -> Iterator[Metric]:
        synced = GaugeMetricFamily(
            "ispbx_inventory_synced", "1 once a full AMI snapshot has been taken", labels=["pbx"]
        )
        sync = GaugeMetricFamily(
            "ispbx_inventory_sync_duration_seconds",
            "How long the last sync of the bulk lists took",
            labels=["pbx"],
        )
        prefetch = GaugeMetricFamily(
            "ispbx_inventory_prefetch_duration_seconds",
            "How long the last detail prefetch over every endpoint took",
            labels=["pbx"],
        )
        for pbx_id, pbx in pbxes:
            inventory = pbx.inventory
            synced.add_metric([pbx_id], 1 if inventory.synced else 0)
            if inventory.sync_seconds is not None:
                sync.add_metric([pbx_id], inventory.sync_seconds)
            if inventory.prefetch_seconds is not None:
                prefetch.add_metric([pbx_id], inventory.prefetch_seconds)
        yield from (synced, sync, prefetch)

    def _contacts(self, pbxes: list[tuple[str, Pbx]]) -> Iterator[Metric]:
        contacts = GaugeMetricFamily(
            "ispbx_contacts",
            "Contacts by status (Reachable, Unreachable, NonQualified, Unknown); only while AMI "
            "is connected",
            labels=["pbx", "status"],
        )
        rtt = HistogramMetricFamily(
            "ispbx_contact_rtt_seconds",
            "Round trip of every qualify result Asterisk reports (ContactStatus events with a "
            "RoundtripUsec: Asterisk sends one when a contact's status changes)",
            labels=["pbx"],
        )
        for pbx_id, pbx in pbxes:
            if is_live(pbx):
                for status, count in sorted(pbx.inventory.contact_status_counts().items()):
                    contacts.add_metric([pbx_id, status], count)
            buckets = pbx.metrics.activity.rtt
            rtt.add_metric([pbx_id], buckets.cumulative(), buckets.sum)
        yield from (contacts, rtt)

    def _activity(self, pbxes: list[tuple[str, Pbx]]) -> Iterator[Metric]:
        registrations = CounterMetricFamily(
            "ispbx_registration_events",
            "ContactStatus events by kind: registered (a new contact), unregistered, reachable, "
            "unreachable, updated (anything else about a known contact)",
            labels=["pbx", "kind"],
        )
        changes = CounterMetricFamily(
            "ispbx_endpoint_state_changes",
            "Endpoints going online or offline (to: the new status)",
            labels=["pbx", "to"],
        )
        for pbx_id, pbx in pbxes:
            activity = pbx.metrics.activity
            for kind, count in sorted(activity.registration_events.items()):
                registrations.add_metric([pbx_id, kind], count)
            for status, count in sorted(activity.state_changes.items()):
                changes.add_metric([pbx_id, status], count)
        yield from (registrations, changes)

    def _config(self, pbxes: list[tuple[str, Pbx]]) -> Iterator[Metric]:
        loaded = GaugeMetricFamily(
            "ispbx_config_loaded",
            "1 when the latest read of pjsip.conf parsed; 0 while it is rejected (the last good "
            "parse is still served) or was never parsed",
            labels=["pbx"],
        )
        warnings = GaugeMetricFamily(
            "ispbx_config_warnings", "Warnings of the pjsip.conf parse in use", labels=["pbx"]
        )
        defined = GaugeMetricFamily(
            "ispbx_config_endpoints", "Endpoints defined in pjsip.conf", labels=["pbx"]
        )
        drift = GaugeMetricFamily(
            "ispbx_config_drift_endpoints",
            "Endpoints in pjsip.conf but not loaded in Asterisk (drift=not_loaded) and loaded "
            "but not in pjsip.conf (drift=not_in_file); only while AMI is connected",
            labels=["pbx", "drift"],
        )
        for pbx_id, pbx in pbxes:
            view = pbx.store.view
            config = view.config
            loaded.add_metric([pbx_id], 1 if config is not None and view.error is None else 0)
            warnings.add_metric([pbx_id], len(view.warnings))
            if config is None:
                continue
            in_file = set(config.endpoint_names())
            defined.add_metric([pbx_id], len(in_file))
            if is_live(pbx):
                in_asterisk = set(pbx.inventory.endpoint_names())
                drift.add_metric([pbx_id, "not_loaded"], len(in_file - in_asterisk))
                drift.add_metric([pbx_id, "not_in_file"], len(in_asterisk - in_file))
        yield from (loaded, warnings, defined, drift)

    def _writes(self, pbxes: list[tuple[str, Pbx]]) -> Iterator[Metric]:
        writes = CounterMetricFamily(
            "ispbx_config_writes",
            "Audited management writes by operation (create, update, delete, import, revert) and "
            "result (applied, rejected, rolled_back, failed); dry runs are not counted",
            labels=["pbx", "operation", "result"],
        )
        rollbacks = CounterMetricFamily(
            "ispbx_config_rollbacks",
            "Writes whose files were put back because Asterisk did not take them as meant",
            labels=["pbx"],
        )
        apply = HistogramMetricFamily(
            "ispbx_config_apply_duration_seconds",
            "Applied writes: from getting the PBX's write lock to Asterisk confirming the change "
            "(file write, reload, read back)",
            labels=["pbx"],
        )
        for pbx_id, pbx in pbxes:
            counts = pbx.metrics.writes
            for (operation, result), count in sorted(counts.writes.items()):
                writes.add_metric([pbx_id, operation, result], count)
            rollbacks.add_metric([pbx_id], counts.rollbacks)
            apply.add_metric([pbx_id], counts.apply.cumulative(), counts.apply.sum)
        yield from (writes, rollbacks, apply)
