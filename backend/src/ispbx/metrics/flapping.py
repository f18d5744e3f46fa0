"""Flapping endpoints, from the history's flap detector (``Pbx.history``).

:class:`FlappingCollector` reads a source of "pbx id → endpoints flapping now" at each scrape;
the exporter gives it every PBX's ``history.flapping_endpoints()``. The flap detector counts
registration and reachability changes (``ISPBX_FLAP_CHANGES`` within ``ISPBX_FLAP_MINUTES``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily, Metric

FlappingSource = Callable[[], Mapping[str, Collection[str]]]  # pbx id -> flapping endpoints


class FlappingCollector:
    """``ispbx_flapping_endpoints{pbx}`` and ``ispbx_endpoint_flapping{pbx,endpoint}`` (1 for each
    endpoint that flaps now; an endpoint that does not has no series)."""

    def __init__(self, source: FlappingSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        total = GaugeMetricFamily(
            "ispbx_flapping_endpoints", "Endpoints flapping now", labels=["pbx"]
        )
        each = GaugeMetricFamily(
            "ispbx_endpoint_flapping",
            "1 while the endpoint flaps (registration or reachability changing often)",
            labels=["pbx", "endpoint"],
        )
        for pbx_id, endpoints in sorted(self._source().items()):
            total.add_metric([pbx_id], len(endpoints))
            for endpoint in sorted(endpoints):
                each.add_metric([pbx_id, endpoint], 1)
        yield total
        yield each
