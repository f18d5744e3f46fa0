"""SIP messages without I/O: parsing, building responses and ACKs, Digest authentication.

Pure functions and data classes only, so the SIP test phone (``ispbx_lab.sipphone``) can be
tested piece by piece without a socket.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

_COMPACT_HEADERS = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
}

_HASHES: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
}


# --------------------------------------------------------------------------- parsing


@dataclass
class SipMessage:
    """A SIP request or response; header look-ups ignore case and accept compact forms."""

    start_line: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return self.start_line.startswith("SIP/")

    @property
    def status(self) -> int:
        """Status code of a response (0 for a request)."""
        if not self.is_response:
            return 0
        parts = self.start_line.split(" ", 2)
        try:
            return int(parts[1])
        except (IndexError, ValueError):
            return 0

    @property
    def reason(self) -> str:
        parts = self.start_line.split(" ", 2)
        return parts[2] if self.is_response and len(parts) > 2 else ""

    @property
    def method(self) -> str:
        """Method of a request (empty string for a response)."""
        return "" if self.is_response else self.start_line.split(" ", 1)[0].upper()

    def get(self, name: str) -> str | None:
        """First value of header ``name`` (long or compact form), or None."""
        values = self.get_all(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """All header lines named ``name``, in order (not split on commas)."""
        key = _canonical_header(name)
        return [value for hname, value in self.headers if _canonical_header(hname) == key]

    def cseq(self) -> tuple[int, str]:
        raw = self.get("cseq") or ""
        parts = raw.split()
        try:
            return int(parts[0]), parts[1].upper() if len(parts) > 1 else ""
        except (IndexError, ValueError):
            return 0, ""

    def top_via_branch(self) -> str | None:
        via = self.get("via")
        if via is None:
            return None
        first = split_header_values(via)[0]
        return via_params(first).get("branch")


def _canonical_header(name: str) -> str:
    low = name.strip().lower()
    return _COMPACT_HEADERS.get(low, low)


def parse_message(data: bytes) -> SipMessage:
    """Parse one SIP message from a datagram. Raises ValueError if it is not SIP."""
    sep = data.find(b"\r\n\r\n")
    if sep >= 0:
        head, body = data[:sep], data[sep + 4 :]
    else:
        sep = data.find(b"\n\n")
        head, body = (data[:sep], data[sep + 2 :]) if sep >= 0 else (data, b"")
    lines = head.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)  # keep-alive CRLFs in front
    if not lines:
        raise ValueError("empty SIP message")
    start = lines[0].strip()
    if not (start.startswith("SIP/2.0 ") or start.endswith(" SIP/2.0")):
        raise ValueError(f"not a SIP start line: {start!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation line
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        if ":" not in line:
            continue
        name, value = line.split(":", 1)
        headers.append((_canonical_header(name), value.strip()))
    msg = SipMessage(start, headers, body)
    length = msg.get("content-length")
    if length is not None and length.isdigit():
        msg.body = body[: int(length)]
    return msg


def split_header_values(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quotes and ``<...>``."""
    parts: list[str] = []
    buf: list[str] = []
    in_quotes = False
    in_angle = False
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif in_quotes and ch == "\\":
            escaped = True
        elif ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch == "<":
            in_angle = True
        elif not in_quotes and ch == ">":
            in_angle = False
        elif ch == "," and not in_quotes and not in_angle:
            parts.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf).strip())
    return [p for p in parts if p]


def parse_params(text: str) -> dict[str, str]:
    """``;a=1;b;c="x"`` -> {"a": "1", "b": "", "c": "x"} (names lower-cased)."""
    params: dict[str, str] = {}
    for raw in text.split(";"):
        item = raw.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return params


def via_params(via: str) -> dict[str, str]:
    _, _, params = via.partition(";")
    return parse_params(params)


def parse_name_addr(value: str) -> tuple[str, dict[str, str]]:
    """Split a Contact/To/From value into (URI, header parameters)."""
    value = value.strip()
    if "<" in value:
        lt = value.index("<")
        gt = value.find(">", lt)
        if gt < 0:
            return value[lt + 1 :], {}
        return value[lt + 1 : gt].strip(), parse_params(value[gt + 1 :])
    uri, _, params = value.partition(";")
    return uri.strip(), parse_params(params)


def uri_key(uri: str) -> str:
    """Comparable form of a SIP URI: no scheme, no URI parameters, lower-case."""
    uri = uri.strip()
    low = uri.lower()
    for scheme in ("sips:", "sip:"):
        if low.startswith(scheme):
            uri = uri[len(scheme) :]
            break
    uri = uri.split(";", 1)[0].split("?", 1)[0]
    user, at, hostport = uri.rpartition("@")
    return f"{user}{at}{hostport.lower()}"


# --------------------------------------------------------------------------- digest


@dataclass
class Challenge:
    """A parsed ``WWW-Authenticate`` / ``Proxy-Authenticate`` Digest challenge."""

    realm: str
    nonce: str
    algorithm: str | None = None  # as sent (None when absent, meaning MD5)
    qop: list[str] = field(default_factory=list)
    opaque: str | None = None
    stale: bool = False

    @property
    def hash_name(self) -> str:
        """Algorithm without a ``-sess`` suffix, upper-case (``MD5``, ``SHA-256``)."""
        alg = (self.algorithm or "MD5").upper()
        return alg.removesuffix("-SESS")

    @property
    def supported(self) -> bool:
        qop_ok = not self.qop or bool({"auth", "auth-int"} & set(self.qop))
        return self.hash_name in _HASHES and qop_ok


_AUTH_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(value: str) -> Challenge:
    """Parse a Digest challenge header value. Raises ValueError if it is not Digest."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError(f"not a Digest challenge: {value!r}")
    params: dict[str, str] = {}
    for match in _AUTH_PARAM.finditer(rest):
        quoted, token = match.group(2), match.group(3)
        raw = quoted if quoted is not None else token
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", raw)
    if "nonce" not in params:
        raise ValueError(f"Digest challenge without nonce: {value!r}")
    qop = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
    return Challenge(
        realm=params.get("realm", ""),
        nonce=params["nonce"],
        algorithm=params.get("algorithm"),
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )


def _hex(hash_name: str, text: str) -> str:
    digest: str = _HASHES[hash_name](text.encode("utf-8")).hexdigest()
    return digest


def digest_response(
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    algorithm: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response=`` value of RFC 2617 / RFC 7616 Digest.

    ``algorithm`` is ``MD5`` (also when None), ``MD5-sess``, ``SHA-256`` or ``SHA-256-sess``;
    ``qop`` is None (RFC 2069 compatibility), ``auth`` or ``auth-int``.
    """
    alg = (algorithm or "MD5").upper()
    hash_name = alg.removesuffix("-SESS")
    if hash_name not in _HASHES:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    ha1 = _hex(hash_name, f"{username}:{realm}:{password}")
    if alg.endswith("-SESS"):
        if not cnonce:
            raise ValueError("-sess algorithms need a cnonce")
        ha1 = _hex(hash_name, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        body_hash: str = _HASHES[hash_name](body).hexdigest()
        ha2 = _hex(hash_name, f"{method}:{uri}:{body_hash}")
    else:
        ha2 = _hex(hash_name, f"{method}:{uri}")
    if qop:
        if not nc or not cnonce:
            raise ValueError("qop needs nc and cnonce")
        return _hex(hash_name, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _hex(hash_name, f"{ha1}:{nonce}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_authorization(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    nc: int = 1,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """Value of an ``Authorization`` / ``Proxy-Authorization`` header answering ``challenge``."""
    if not challenge.supported:
        raise ValueError(
            f"unsupported challenge (algorithm={challenge.algorithm}, qop={challenge.qop})"
        )
    qop: str | None = None
    if challenge.qop:
        qop = "auth" if "auth" in challenge.qop else "auth-int"
    alg_sess = (challenge.algorithm or "").upper().endswith("-SESS")
    if (qop or alg_sess) and cnonce is None:
        cnonce = secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    response = digest_response(
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_text if qop else None,
        cnonce=cnonce,
        algorithm=challenge.algorithm,
        body=body,
    )
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
    ]
    if challenge.algorithm is not None:
        parts.append(f"algorithm={challenge.algorithm}")
    if cnonce is not None and (qop or alg_sess):
        parts.append(f"cnonce={_quote(cnonce)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if qop:
        parts.append(f"qop={qop}")
        parts.append(f"nc={nc_text}")
    return "Digest " + ", ".join(parts)


def pick_challenge(values: list[str]) -> Challenge:
    """Best supported Digest challenge among several header values (SHA-256 over MD5)."""
    challenges: list[Challenge] = []
    for value in values:
        try:
            challenges.append(parse_challenge(value))
        except ValueError:
            continue
    usable = [c for c in challenges if c.supported]
    if not usable:
        raise ValueError(f"no usable Digest challenge in {values!r}")
    usable.sort(key=lambda c: 0 if c.hash_name == "SHA-256" else 1)
    return usable[0]


# --------------------------------------------------------------------------- addresses


def loopback_host(host: str) -> str:
    """Return ``host`` as a loopback IP literal, or raise ValueError."""
    if host.lower() == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError as exc:
        raise ValueError(f"SipPhone only talks to loopback IP addresses, not {host!r}") from exc
    if not ip.is_loopback:
        raise ValueError(f"SipPhone only talks to loopback addresses, not {host!r}")
    return str(ip)


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bracket_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def stamp_via(via: str, addr: tuple[Any, ...]) -> str:
    """Add ``received=`` / fill ``rport`` on the top Via of a request we answer (RFC 3581)."""
    sent_by, sep, param_text = via.partition(";")
    params = [p.strip() for p in param_text.split(";") if p.strip()] if sep else []
    host = sent_by.split()[-1] if sent_by.split() else ""
    if host.startswith("["):
        host = host[1 : host.find("]")]
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    src_host, src_port = str(addr[0]), int(addr[1])
    out: list[str] = []
    for p in params:
        if p.lower() == "rport":
            out.append(f"rport={src_port}")
        else:
            out.append(p)
    if host != src_host and not any(p.lower().startswith("received=") for p in params):
        out.append(f"received={src_host}")
    return ";".join([sent_by.strip(), *out])


def serialize(msg: SipMessage) -> bytes:
    lines = [msg.start_line]
    lines.extend(f"{name}: {value}" for name, value in msg.headers)
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8") + msg.body


# --------------------------------------------------------------------------- building


def new_branch() -> str:
    """A fresh Via branch with RFC 3261's magic cookie."""
    return "z9hG4bK" + secrets.token_hex(10)


def new_tag() -> str:
    return secrets.token_hex(6)


def tag_of(value: str | None) -> str | None:
    """The ``tag`` parameter of a From/To header value, or None."""
    if value is None:
        return None
    return parse_name_addr(value)[1].get("tag") or None


def with_tag(value: str, tag: str) -> str:
    """``value`` with ``;tag=TAG`` appended, unless it already carries a tag."""
    return value if tag_of(value) else f"{value};tag={tag}"


def request_uri(request: SipMessage) -> str:
    parts = request.start_line.split()
    return parts[1] if len(parts) == 3 else ""


def user_of(value: str) -> str:
    """The user part of the URI in a name-addr (``"A" <sip:103@h>;tag=x`` -> ``103``)."""
    uri = parse_name_addr(value)[0]
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0] if "@" in rest else ""


def vias_of(message: SipMessage) -> list[str]:
    """Every Via value in order, comma-joined header lines split apart."""
    return [v for line in message.get_all("via") for v in split_header_values(line)]


def build_response(
    request: SipMessage,
    status: int,
    reason: str,
    *,
    source: tuple[Any, ...],
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipMessage:
    """A response to ``request`` (RFC 3261 8.2.6): its Vias (the top one stamped with the
    ``source`` address it came from), From, Call-ID and CSeq; its To with ``to_tag`` added when
    the To has none; then ``headers``, the body and Content-Length."""
    out: list[tuple[str, str]] = []
    for i, via in enumerate(vias_of(request)):
        out.append(("Via", stamp_via(via, source) if i == 0 else via))
    from_value = request.get("from")
    if from_value is not None:
        out.append(("From", from_value))
    to_value = request.get("to")
    if to_value is not None:
        out.append(("To", with_tag(to_value, to_tag) if to_tag else to_value))
    for name, value in (("Call-ID", request.get("call-id")), ("CSeq", request.get("cseq"))):
        if value is not None:
            out.append((name, value))
    out.extend(headers)
    if body and content_type:
        out.append(("Content-Type", content_type))
    out.append(("Content-Length", str(len(body))))
    return SipMessage(f"SIP/2.0 {status} {reason}", out, body)


def _same_transaction(invite: SipMessage, method: str, to_value: str | None) -> SipMessage:
    """ACK-for-failure and CANCEL share the INVITE's Request-URI, top Via, From, Call-ID,
    CSeq number and Route set (RFC 3261 9.1 and 17.1.1.3)."""
    vias = vias_of(invite)
    number, _ = invite.cseq()
    headers: list[tuple[str, str]] = [("Via", vias[0] if vias else "")]
    headers.append(("Max-Forwards", "70"))
    for name, value in (
        ("From", invite.get("from")),
        ("To", to_value),
        ("Call-ID", invite.get("call-id")),
    ):
        if value is not None:
            headers.append((name, value))
    headers.append(("CSeq", f"{number} {method}"))
    headers.extend(("Route", route) for route in invite.get_all("route"))
    headers.append(("Content-Length", "0"))
    return SipMessage(f"{method} {request_uri(invite)} SIP/2.0", headers)


def build_ack_for_failure(invite: SipMessage, response: SipMessage) -> SipMessage:
    """The ACK an INVITE client transaction sends for a 3xx-6xx answer: it belongs to the
    INVITE's transaction (same branch) and takes the answer's To (with the answerer's tag)."""
    return _same_transaction(invite, "ACK", response.get("to") or invite.get("to"))


def build_cancel(invite: SipMessage) -> SipMessage:
    """CANCEL of a pending INVITE: same branch, To without the callee's tag (RFC 3261 9.1)."""
    return _same_transaction(invite, "CANCEL", invite.get("to"))
