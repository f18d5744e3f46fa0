"""The Prometheus text format (version 0.0.4), for the families written without prometheus_client.

Only what those families need: a HELP/TYPE header and one sample line, with the escaping the
format prescribes (label values: backslash, double quote, line feed; HELP: backslash, line feed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def number(value: float) -> str:
    """A sample value as Prometheus reads it (integers without ``.0``)."""
    if value == int(value):
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True)
class Family:
    name: str
    type: str  # "gauge", "counter", "histogram"
    help: str

    def header(self) -> bytes:
        return (
            f"# HELP {self.name} {escape_help(self.help)}\n# TYPE {self.name} {self.type}\n"
        ).encode()


def labels(pairs: Sequence[tuple[str, str]]) -> str:
    """``{a="x",b="y"}`` with escaped values (names are ours, always valid)."""
    return "{" + ",".join(f'{name}="{escape_label_value(value)}"' for name, value in pairs) + "}"
