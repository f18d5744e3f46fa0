"""AMI access: a fixed-up panoramisk client and a long-lived, self-reconnecting session."""

from ispbx.ami.client import (
    EMPTY_LIST_MESSAGES,
    AmiActionError,
    AmiAuthError,
    AmiClient,
    AmiDisconnected,
    AmiError,
    AmiMessage,
    AmiTimeout,
    AmiValueError,
)
from ispbx.ami.session import AmiSession, AmiState
from ispbx.ami.stats import AmiStats
from ispbx.ami.target import AmiTarget

__all__ = [
    "EMPTY_LIST_MESSAGES",
    "AmiActionError",
    "AmiAuthError",
    "AmiClient",
    "AmiDisconnected",
    "AmiError",
    "AmiMessage",
    "AmiSession",
    "AmiState",
    "AmiStats",
    "AmiTarget",
    "AmiTimeout",
    "AmiValueError",
]
