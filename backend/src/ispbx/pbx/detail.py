"""pjsip_detail.ini: which AMI fields each response shows.

One section per AMI event (``[EndpointList]``, ``[EndpointDetail]``, …) with a ``fields`` line of
AMI field names as they appear on the wire. Response keys are those names lower-cased; a field the
event lacks is left out.
"""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SECTIONS = ("EndpointList", "EndpointDetail", "AuthDetail", "AorDetail", "ContactStatusDetail")


class DetailConfigError(Exception):
    """pjsip_detail.ini cannot be used; ``str()`` says what and where."""


@dataclass(frozen=True)
class DetailFields:
    """The selected AMI field names per event, in the ini's order."""

    fields: Mapping[str, tuple[str, ...]]

    def select(self, event: str, message: Mapping[str, str]) -> dict[str, str]:
        """The selected fields of ``message``, keys lower-cased, missing fields left out."""
        return {
            name.lower(): message[name] for name in self.fields.get(event, ()) if name in message
        }


def parse_detail_ini(text: str, source: str = "pjsip_detail.ini") -> DetailFields:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise DetailConfigError(f"{source}: {str(exc).splitlines()[0]}") from None
    unknown = [name for name in parser.sections() if name not in SECTIONS]
    if unknown:
        raise DetailConfigError(
            f"{source}: unknown section [{unknown[0]}] (known: {', '.join(SECTIONS)})"
        )
    fields: dict[str, tuple[str, ...]] = {}
    for name in parser.sections():
        raw = parser.get(name, "fields", fallback="")
        fields[name] = tuple(part.strip() for part in raw.split(",") if part.strip())
    return DetailFields(fields)


def load_detail_ini(path: Path) -> DetailFields:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DetailConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_detail_ini(text, str(path))
