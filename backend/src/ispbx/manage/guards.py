"""Refusals before any write: when editing the file would not change what Asterisk runs.

``sorcery.conf`` (beside pjsip.conf) may map endpoints, auths or AORs to realtime (a database) or
astdb: those objects then do not live in pjsip.conf, and a file edit would be silently ignored.
"""

from __future__ import annotations

from pathlib import Path

from ispbx.pjsip.model import PjsipConfigError
from ispbx.pjsip.parser import parse_file

MANAGED_TYPES = ("endpoint", "auth", "aor")


def sorcery_refusal(pjsip_conf: Path) -> str | None:
    """Why endpoints/auths/AORs are not read from ``pjsip_conf`` by Asterisk, or None."""
    sorcery = pjsip_conf.parent / "sorcery.conf"
    if not sorcery.exists():
        return None
    try:
        config = parse_file(sorcery)
    except PjsipConfigError as exc:
        return f"{sorcery} cannot be read ({exc}), so where Asterisk keeps endpoints is unknown"
    wizards: dict[str, list[tuple[str, str]]] = {}
    for section in config.sections:
        if section.name.lower() != "res_pjsip":
            continue
        for key, value in section.options:
            if key in MANAGED_TYPES:
                name, _, rest = value.partition(",")
                wizards.setdefault(key, []).append((name.strip().lower(), rest.strip()))
    for object_type, mapped in wizards.items():
        in_file = [rest for name, rest in mapped if name == "config"]
        if not in_file:
            elsewhere = ", ".join(sorted({name for name, _ in mapped}))
            return (
                f"{sorcery} maps PJSIP {object_type} objects to {elsewhere}: Asterisk does not "
                f"read them from {pjsip_conf.name}, so editing that file would change nothing"
            )
        if not any(_names_file(rest, pjsip_conf.name) for rest in in_file):
            return (
                f"{sorcery} reads PJSIP {object_type} objects from another file than "
                f"{pjsip_conf.name}; edit them there"
            )
    return None


def _names_file(rest: str, file_name: str) -> bool:
    """``config,pjsip.conf,criteria=type=endpoint``: the file is the first field (or absent)."""
    first = rest.split(",", 1)[0].strip()
    return not first or first == file_name
