"""Exponential backoff with jitter, shared by the AMI session's reconnects and the sync retry."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Nominal delays initial, 2·initial, 4·initial … capped at ``cap``.

    For the first ``fast_for`` seconds of nominal waiting a step is at most ``fast_cap``: Asterisk
    restarts in seconds, and a session should be back soon after it does."""

    def __init__(
        self, initial: float, cap: float, *, fast_cap: float = 4.0, fast_for: float = 120.0
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.fast_cap = fast_cap
        self.fast_for = fast_for
        self._next = initial
        self._waited = 0.0

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(delay * 2, self.cap)
        if self._waited < self.fast_for:
            delay = min(delay, self.fast_cap)
        self._waited += delay
        return delay

    def reset(self) -> None:
        self._next = self.initial
        self._waited = 0.0


def jittered(delay: float, rand: Callable[[], float] = random.random) -> float:
    """A random delay between half and all of ``delay`` (never longer than the nominal step)."""
    return delay * (0.5 + 0.5 * rand())
