"""Everything /metrics keeps about one PBX between scrapes, wired in ``Pbx._wire``."""

from __future__ import annotations

from ispbx.ami import AmiMessage
from ispbx.metrics.activity import PbxActivity
from ispbx.metrics.endpoints import EndpointQueries, EndpointSeries
from ispbx.metrics.writes import WriteCounts


class PbxMetrics:
    """The counters (``activity``, ``writes``) and the per-endpoint lines (``series``) of one
    PBX."""

    def __init__(self, pbx_id: str, inventory: EndpointQueries) -> None:
        self.activity = PbxActivity(inventory)
        self.writes = WriteCounts()
        self.series = EndpointSeries(pbx_id)

    def on_ami_event(self, message: AmiMessage) -> None:
        """Session listener (every AMI event)."""
        self.activity.on_ami_event(message)

    def endpoints_changed(self, names: set[str] | None) -> None:
        """Inventory listener (the change stream)."""
        self.activity.endpoints_changed(names)
        self.series.endpoints_changed(names)
