"""The management writes of one PBX, counted: by operation and result, rollbacks, and how long an
applied change took from getting the PBX's write lock to Asterisk confirming it.

:class:`WriteCounts` listens to ``manage.attempted`` (wired in ``Pbx._wire``): one attempt per
audited write, so these numbers and the audit log agree. Dry runs are no writes and are not
counted.
"""

from __future__ import annotations

from collections import Counter

from ispbx.history import AuditResult
from ispbx.manage.service import Attempt
from ispbx.metrics.histogram import APPLY_BUCKETS, Buckets

OPERATIONS = ("create", "update", "delete", "import", "revert")


class WriteCounts:
    def __init__(self) -> None:
        # Known label values start at 0, so increase() has a first point before the first write.
        self.writes: Counter[tuple[str, str]] = Counter(
            dict.fromkeys(
                ((operation, result.value) for operation in OPERATIONS for result in AuditResult),
                0,
            )
        )
        self.rollbacks = 0
        self.apply = Buckets(APPLY_BUCKETS)  # seconds of each applied write

    def attempted(self, attempt: Attempt) -> None:
        """``manage.attempted`` listener."""
        self.writes[(attempt.operation, attempt.result.value)] += 1
        if attempt.rolled_back:
            self.rollbacks += 1
        if attempt.result is AuditResult.APPLIED:
            self.apply.observe(attempt.seconds)
