"""Where and how to reach one Asterisk's AMI: one frozen value, passed whole."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AmiTarget:
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    connect_timeout: float = 5.0
    action_timeout: float = 5.0
    ping_interval: float = 1.0  # Ping after this long without traffic from Asterisk
    silence_timeout: float = 3.0  # drop the connection after this long without any traffic
    backoff_initial: float = 0.2
    backoff_cap: float = 30.0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
