"""What ``GET /metrics`` answers: one registry per app, built in the lifespan.

The registry holds :class:`~ispbx.metrics.collector.IspbxCollector`, the flapping series from
each PBX's history (:class:`~ispbx.metrics.flapping.FlappingCollector`); the per-endpoint
families are appended by :mod:`ispbx.metrics.endpoints`. All of it is rendered in the event
loop, at the scrape, from the state of that moment.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from ispbx.metrics.collector import IspbxCollector, is_live
from ispbx.metrics.endpoints import render_families
from ispbx.metrics.flapping import FlappingCollector
from ispbx.metrics.http import HttpStats
from ispbx.pbx.pbx import Pbx

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the classic text format, which every Prometheus reads


class MetricsExporter:
    def __init__(self, pbxes: Mapping[str, Pbx], http: HttpStats) -> None:
        self._pbxes = pbxes
        self.registry = CollectorRegistry()
        self.registry.register(IspbxCollector(lambda: self._pbxes, http))
        self.registry.register(FlappingCollector(self._flapping))

    def _flapping(self) -> dict[str, frozenset[str]]:
        return {pbx_id: pbx.history.flapping_endpoints() for pbx_id, pbx in self._pbxes.items()}

    def render(self) -> bytes:
        parts = [
            pbx.metrics.series.render(pbx.inventory) for pbx in self._pbxes.values() if is_live(pbx)
        ]
        return generate_latest(self.registry) + render_families(parts)
