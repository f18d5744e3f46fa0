"""A histogram's buckets, sum and count: what one Prometheus histogram series needs.

Observations are counted per bucket (not cumulatively) and summed up only when a scrape asks, so
an observation costs one bisect and two additions.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# Qualify round trips: a LAN answers in about a millisecond, a far phone in a few hundred;
# Asterisk gives up at qualify_timeout (3 s by default).
RTT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# HTTP handling time inside the service: the read path takes well under a millisecond.
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# An applied write: a file write, a pjsip reload (half a second at a few thousand endpoints) and
# a read back; a large import or a loaded server takes seconds.
APPLY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def bound_text(bound: float) -> str:
    """A bucket bound as Prometheus' ``le`` label spells it (``0.005``, ``1.0``, ``+Inf``)."""
    return repr(float(bound))


class Buckets:
    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self._counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # le is "less than or equal": bisect_left puts a value equal to a bound in that bucket.
        self._counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, observations ≤ le)`` for every bound and ``+Inf``, as HistogramMetricFamily
        takes them."""
        result: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self._counts, strict=False):
            running += count
            result.append((bound_text(bound), float(running)))
        result.append(("+Inf", float(self.count)))
        return result
