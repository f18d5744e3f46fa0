"""SDP of the lab phone: one audio stream, PCMU only (RFC 4566 syntax, RFC 3264 offer/answer).

The phone never sends media; it only needs to offer or answer honestly so Asterisk can bridge
the call. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

PCMU = 0  # static RTP payload type of G.711 mu-law (RFC 3551)
CONTENT_TYPE = "application/sdp"
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass(frozen=True)
class SdpAudio:
    """What an SDP says about its first audio stream."""

    address: str
    port: int
    payload_types: tuple[int, ...]
    rtpmap: Mapping[int, str] = field(default_factory=dict)  # payload type -> "PCMU/8000"
    direction: str = "sendrecv"

    def offers_pcmu(self) -> bool:
        """True when PCMU/8000 is among the stream's formats (by number or by rtpmap)."""
        if PCMU in self.payload_types:
            return True
        return any(
            self.rtpmap.get(pt, "").upper().startswith("PCMU/8000") for pt in self.payload_types
        )


def build_sdp(host: str, port: int, *, session_id: int, version: int = 1) -> bytes:
    """An offer or answer for one PCMU audio stream on ``host``:``port``."""
    family = "IP6" if ":" in host else "IP4"
    lines = [
        "v=0",
        f"o=- {session_id} {version} IN {family} {host}",
        "s=ISPBX Manager lab phone",
        f"c=IN {family} {host}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {PCMU}",
        f"a=rtpmap:{PCMU} PCMU/8000",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def parse_sdp(body: bytes) -> SdpAudio:
    """The first audio stream of an SDP body. Raises ValueError when there is none."""
    session, *media = _sections(body.decode("utf-8", errors="replace"))
    for lines in media:
        parsed = _media_line(lines[0][1])
        if parsed is None:
            continue
        port, formats = parsed
        address = _address(lines) or _address(session)
        if not address:
            raise ValueError("SDP without a connection address")
        rtpmap: dict[int, str] = {}
        direction = "sendrecv"
        for kind, value in lines:
            name, _, arg = value.partition(":")
            if kind == "a" and name == "rtpmap":
                number, _, codec = arg.partition(" ")
                if number.isdigit():
                    rtpmap[int(number)] = codec.strip()
            elif kind == "a" and name in DIRECTIONS:
                direction = name
        return SdpAudio(address, port, formats, rtpmap, direction)
    raise ValueError("SDP without an audio stream")


def _sections(text: str) -> list[list[tuple[str, str]]]:
    """The session's ``(type, value)`` lines, then one list per ``m=`` section."""
    sections: list[list[tuple[str, str]]] = [[]]
    for raw in text.replace("\r\n", "\n").split("\n"):
        kind, sep, value = raw.strip().partition("=")
        if not sep or len(kind) != 1:
            continue
        if kind == "m":
            sections.append([])
        sections[-1].append((kind, value))
    return sections


def _address(lines: list[tuple[str, str]]) -> str:
    for kind, value in lines:
        if kind == "c":
            return _connection_address(value)
    return ""


def _media_line(value: str) -> tuple[int, tuple[int, ...]] | None:
    """``audio 4000 RTP/AVP 0 8`` -> (4000, (0, 8)); None for other media."""
    parts = value.split()
    if len(parts) < 4 or parts[0] != "audio":
        return None
    port_text = parts[1].split("/", 1)[0]
    if not port_text.isdigit():
        raise ValueError(f"bad SDP media line: m={value}")
    return int(port_text), tuple(int(p) for p in parts[3:] if p.isdigit())


def _connection_address(value: str) -> str:
    parts = value.split()
    if len(parts) < 3 or parts[0] != "IN":
        raise ValueError(f"bad SDP connection line: c={value}")
    return parts[2].split("/", 1)[0]
