"""Counters of one AMI session that must survive reconnects.

Each connection is a fresh :class:`~ispbx.ami.client.AmiClient`, so anything counted on the client
starts again at zero after every reconnect. The session owns one :class:`AmiStats` for its whole
life; the client reports each action it writes through a callback, and the session's own event
and state listeners feed the rest. Plain counters, no I/O: ``/metrics`` reads them at scrape time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ispbx.ami.client import AmiMessage


class SessionState(Protocol):
    """What is counted of the session's state (``AmiState``: the session imports this module)."""

    @property
    def connected(self) -> bool: ...


@dataclass
class AmiStats:
    actions: Counter[str] = field(default_factory=Counter)  # action name -> actions written
    events: int = 0  # events received, every connection
    connects: int = 0  # times the session went from down to logged in

    @property
    def reconnects(self) -> int:
        """Logins after the first one: each is a connection lost and made again."""
        return max(0, self.connects - 1)

    def action_sent(self, name: str) -> None:
        self.actions[name] += 1

    def event_received(self, _message: AmiMessage) -> None:
        self.events += 1

    def state_changed(self, state: SessionState) -> None:
        if state.connected:
            self.connects += 1
