"""Flapping: an endpoint whose registration or reachability keeps changing (pure).

An endpoint that changes ``threshold`` times within ``window`` starts flapping; it stops once it
has been quiet for ``window``. The detector only returns the transitions; the caller records them
as events, sets the ``flapping`` field of rows and sends the SSE event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ispbx.history.events import CONTACT_TRANSITIONS, EventKind, HistoryEvent, utc_now

DEFAULT_THRESHOLD = 4
DEFAULT_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class FlapTransition:
    """``started`` True: the endpoint began flapping at ``at``; False: it stopped then."""

    endpoint: str
    started: bool
    at: datetime
    changes: int  # changes within the window when it started; during the flapping when it stops

    def event(self, pbx: str) -> HistoryEvent:
        kind = EventKind.FLAPPING_STARTED if self.started else EventKind.FLAPPING_STOPPED
        return HistoryEvent(pbx, self.endpoint, kind, self.at, {"changes": self.changes})


class FlapDetector:
    """Counts changes per endpoint; ``tick`` ends flapping after a quiet window."""

    def __init__(
        self,
        threshold: int = DEFAULT_THRESHOLD,
        window: timedelta = DEFAULT_WINDOW,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if threshold < 1 or window <= timedelta(0):
            raise ValueError("flapping needs a threshold ≥ 1 and a positive window")
        self.threshold = threshold
        self.window = window
        self._clock = clock
        self._recent: dict[str, deque[datetime]] = {}  # change times within the window
        self._flapping: dict[str, int] = {}  # endpoint -> changes since it started
        self._last: dict[str, datetime] = {}

    def flapping(self, endpoint: str) -> bool:
        return endpoint in self._flapping

    def flapping_endpoints(self) -> frozenset[str]:
        return frozenset(self._flapping)

    def note(self, endpoint: str, at: datetime | None = None) -> list[FlapTransition]:
        """One registration or reachability change of ``endpoint`` (now, or at ``at``)."""
        when = at if at is not None else self._clock()
        transitions = self._expire(endpoint, when)
        recent = self._recent.setdefault(endpoint, deque())
        recent.append(when)
        while recent and when - recent[0] >= self.window:
            recent.popleft()
        self._last[endpoint] = when
        if endpoint in self._flapping:
            self._flapping[endpoint] += 1
        elif len(recent) >= self.threshold:
            self._flapping[endpoint] = len(recent)
            transitions.append(FlapTransition(endpoint, True, when, len(recent)))
        return transitions

    def note_events(self, events: Iterable[HistoryEvent]) -> list[FlapTransition]:
        """``note`` once per endpoint for the contact transitions among ``events`` (one
        observation, e.g. a contact replaced by another, is one change, not two)."""
        seen: dict[str, datetime] = {}
        for event in events:
            if event.endpoint is not None and event.kind in CONTACT_TRANSITIONS:
                seen.setdefault(event.endpoint, event.occurred_at)
        transitions: list[FlapTransition] = []
        for endpoint, at in seen.items():
            transitions.extend(self.note(endpoint, at))
        return transitions

    def tick(self, now: datetime | None = None) -> list[FlapTransition]:
        """End flapping for endpoints quiet for a window; forget stale counts."""
        when = now if now is not None else self._clock()
        transitions: list[FlapTransition] = []
        for endpoint in list(self._last):
            transitions.extend(self._expire(endpoint, when))
        return transitions

    def forget(self, endpoint: str) -> None:
        """The endpoint is gone: drop its counts (no transition)."""
        self._recent.pop(endpoint, None)
        self._flapping.pop(endpoint, None)
        self._last.pop(endpoint, None)

    def _expire(self, endpoint: str, when: datetime) -> list[FlapTransition]:
        last = self._last.get(endpoint)
        if last is None or when - last < self.window:
            return []
        self._recent.pop(endpoint, None)
        self._last.pop(endpoint, None)
        changes = self._flapping.pop(endpoint, None)
        if changes is None:
            return []
        return [FlapTransition(endpoint, False, last + self.window, changes)]
