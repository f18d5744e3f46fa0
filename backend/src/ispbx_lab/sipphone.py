"""A minimal SIP "phone" for tests: REGISTER with digest auth over UDP, and un-REGISTER.

Tests of the product use it to make a PJSIP endpoint of a real Asterisk really
"online" (registered, and answering Asterisk's qualify OPTIONS) and "offline".

Only loopback addresses are accepted, for both the registrar and the local socket.

Example::

    async with SipPhone("1001", "secret", registrar=("127.0.0.1", 5070)) as phone:
        reg = await phone.register(expires=60)
        ...  # Asterisk now sees 1001 as reachable
        await phone.unregister()
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

__all__ = [
    "Challenge",
    "Registration",
    "SipError",
    "SipMessage",
    "SipPhone",
    "build_authorization",
    "digest_response",
    "parse_challenge",
    "parse_message",
    "register_blocking",
    "unregister_blocking",
]

log = logging.getLogger(__name__)

T1 = 0.5  # RFC 3261 round-trip estimate (s)
T2 = 4.0  # RFC 3261 maximum retransmit interval for non-INVITE requests (s)
MAX_AUTH_ROUNDS = 3

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


class SipError(Exception):
    """A REGISTER failed: non-2xx final answer, timeout or an unusable challenge.

    ``str()`` names the request and, when there is one, the status line of the answer.
    """

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass
class Registration:
    """Outcome of a successful REGISTER (2xx)."""

    status: int
    expires: int
    contact: str
    call_id: str


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
        return _via_params(first).get("branch")


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


def _parse_params(text: str) -> dict[str, str]:
    """``;a=1;b;c="x"`` -> {"a": "1", "b": "", "c": "x"} (names lower-cased)."""
    params: dict[str, str] = {}
    for raw in text.split(";"):
        item = raw.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return params


def _via_params(via: str) -> dict[str, str]:
    _, _, params = via.partition(";")
    return _parse_params(params)


def parse_name_addr(value: str) -> tuple[str, dict[str, str]]:
    """Split a Contact/To/From value into (URI, header parameters)."""
    value = value.strip()
    if "<" in value:
        lt = value.index("<")
        gt = value.find(">", lt)
        if gt < 0:
            return value[lt + 1 :], {}
        return value[lt + 1 : gt].strip(), _parse_params(value[gt + 1 :])
    uri, _, params = value.partition(";")
    return uri.strip(), _parse_params(params)


def _uri_key(uri: str) -> str:
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


def _pick_challenge(values: list[str]) -> Challenge:
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


# --------------------------------------------------------------------------- transport


def _loopback_host(host: str) -> str:
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


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[Any, ...]], None]) -> None:
        self._on_datagram = on_datagram
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            self._on_datagram(data, addr)
        except Exception:  # never let a bad packet kill the transport
            log.exception("SipPhone: error handling datagram from %s", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("SipPhone: socket error %r", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass
class _Transaction:
    future: asyncio.Future[SipMessage]
    provisional: bool = False


class SipPhone:
    """A SIP user agent that registers one account at a registrar over UDP (loopback only).

    While open (``async with``) it answers incoming OPTIONS and NOTIFY with 200 OK, so a
    registrar's qualify sees the phone as reachable.
    """

    def __init__(
        self,
        user: str,
        password: str,
        *,
        registrar: tuple[str, int] = ("127.0.0.1", 5060),
        local_host: str = "127.0.0.1",
        local_port: int = 0,
        auth_user: str | None = None,
        user_agent: str = "ISPBX-TestPhone/1.0",
        timeout: float = 3.0,
        t1: float = T1,
        unregister_on_exit: bool = False,
    ) -> None:
        self.user = user
        self.password = password
        self.auth_user = auth_user if auth_user is not None else user
        self.registrar: tuple[str, int] = (_loopback_host(registrar[0]), int(registrar[1]))
        self.local_host = _loopback_host(local_host)
        self._requested_port = local_port
        self.user_agent = user_agent
        self.timeout = timeout
        self.t1 = t1
        self.unregister_on_exit = unregister_on_exit

        self.call_id = f"{secrets.token_hex(12)}@{_host(self.local_host)}"
        self.from_tag = secrets.token_hex(6)
        self._cseq = secrets.randbelow(1000) + 1
        self._nc: dict[str, int] = {}  # nonce -> last nonce-count used
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None
        self._local: tuple[str, int] | None = None
        self._transactions: dict[str, _Transaction] = {}
        self._lock: asyncio.Lock | None = None
        self.registered = False
        self.requests_answered: list[str] = []  # methods of incoming requests we answered

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _Protocol(self._on_datagram),
            local_addr=(self.local_host, self._requested_port),
        )
        self._transport = transport
        self._protocol = protocol
        sockname = transport.get_extra_info("sockname")
        self._local = (self.local_host, int(sockname[1]))
        self._lock = asyncio.Lock()
        log.debug("SipPhone %s listening on %s", self.user, _hostport(*self._local))

    async def close(self) -> None:
        transport, protocol = self._transport, self._protocol
        if transport is None:
            return
        self._transport = None
        self._protocol = None
        transport.close()
        for tx in self._transactions.values():
            if not tx.future.done():
                tx.future.set_exception(SipError("SipPhone closed while waiting for an answer"))
        self._transactions.clear()
        if protocol is not None:
            await protocol.closed

    async def __aenter__(self) -> SipPhone:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.unregister_on_exit and self.registered and self._transport is not None:
                try:
                    await self.unregister()
                except SipError as err:
                    log.warning("SipPhone %s: unregister on exit failed: %s", self.user, err)
        finally:
            await self.close()

    @property
    def local_address(self) -> tuple[str, int]:
        """(host, port) of the open UDP socket."""
        if self._local is None:
            raise RuntimeError("SipPhone is not open (use 'async with SipPhone(...)')")
        return self._local

    @property
    def contact_uri(self) -> str:
        return f"sip:{self.user}@{_hostport(*self.local_address)}"

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{_host(self.registrar[0])}"

    @property
    def request_uri(self) -> str:
        return f"sip:{_hostport(*self.registrar)}"

    # -- REGISTER ----------------------------------------------------------------------

    async def register(self, expires: int = 300) -> Registration:
        """REGISTER (answering a 401/407 Digest challenge) and return the 2xx outcome."""
        if expires < 0:
            raise ValueError("expires must be >= 0")
        if self._transport is None or self._lock is None:
            raise RuntimeError("SipPhone is not open (use 'async with SipPhone(...)')")
        async with self._lock:
            reg = await self._register(expires)
        self.registered = reg.expires > 0
        return reg

    async def unregister(self) -> Registration:
        """REGISTER with ``Expires: 0`` (and ``;expires=0`` on the Contact)."""
        return await self.register(expires=0)

    async def _register(self, expires: int) -> Registration:
        what = f"REGISTER {self.aor} at {_hostport(*self.registrar)}"
        auth_header: tuple[str, str] | None = None
        response: SipMessage | None = None
        for _ in range(MAX_AUTH_ROUNDS + 1):
            request = self._build_register(expires, auth_header)
            response = await self._send_request(request, what)
            status = response.status
            if 200 <= status < 300:
                return self._registration(response, expires)
            if status not in (401, 407):
                raise SipError(
                    f"{what} failed: {response.start_line}", status=status, reason=response.reason
                )
            try:
                challenge = self._challenge_of(response)
            except ValueError as exc:
                raise SipError(
                    f"{what} failed: {response.start_line} with a bad challenge: {exc}",
                    status=status,
                    reason=response.reason,
                ) from exc
            # A challenge to an answered challenge means wrong credentials, unless the
            # nonce merely went stale.
            if auth_header is not None and not challenge.stale:
                raise SipError(
                    f"{what} failed: {response.start_line} (credentials rejected"
                    f" for auth user {self.auth_user!r})",
                    status=status,
                    reason=response.reason,
                )
            nc = self._nc.get(challenge.nonce, 0) + 1
            self._nc[challenge.nonce] = nc
            value = build_authorization(
                challenge,
                username=self.auth_user,
                password=self.password,
                method="REGISTER",
                uri=self.request_uri,
                nc=nc,
            )
            name = "Authorization" if status == 401 else "Proxy-Authorization"
            auth_header = (name, value)
        assert response is not None
        raise SipError(
            f"{what} failed: {response.start_line} (too many challenges)",
            status=response.status,
            reason=response.reason,
        )

    @staticmethod
    def _challenge_of(response: SipMessage) -> Challenge:
        name = "www-authenticate" if response.status == 401 else "proxy-authenticate"
        values = response.get_all(name)
        if not values:
            raise ValueError(f"no {name} header")
        return _pick_challenge(values)

    def _build_register(self, expires: int, auth: tuple[str, str] | None) -> SipMessage:
        self._cseq += 1
        branch = "z9hG4bK" + secrets.token_hex(10)
        contact = f"<{self.contact_uri}>"
        if expires == 0:
            contact += ";expires=0"
        headers: list[tuple[str, str]] = [
            ("Via", f"SIP/2.0/UDP {_hostport(*self.local_address)};rport;branch={branch}"),
            ("Max-Forwards", "70"),
            ("From", f"<{self.aor}>;tag={self.from_tag}"),
            ("To", f"<{self.aor}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self._cseq} REGISTER"),
            ("Contact", contact),
            ("Expires", str(expires)),
            ("Allow", "OPTIONS, NOTIFY"),
            ("User-Agent", self.user_agent),
        ]
        if auth is not None:
            headers.append(auth)
        headers.append(("Content-Length", "0"))
        return SipMessage(f"REGISTER {self.request_uri} SIP/2.0", headers)

    def _registration(self, response: SipMessage, requested: int) -> Registration:
        ours = _uri_key(self.contact_uri)
        expires: int | None = None
        contact = self.contact_uri
        for line in response.get_all("contact"):
            for value in split_header_values(line):
                uri, params = parse_name_addr(value)
                if _uri_key(uri) != ours:
                    continue
                contact = uri
                if params.get("expires", "").isdigit():
                    expires = int(params["expires"])
                break
        if expires is None:
            header = (response.get("expires") or "").strip()
            expires = int(header) if header.isdigit() else requested
        if requested == 0:
            expires = 0
        call_id = response.get("call-id") or self.call_id
        return Registration(
            status=response.status, expires=expires, contact=contact, call_id=call_id
        )

    # -- client transaction (RFC 3261 17.1.2, non-INVITE) ------------------------------

    async def _send_request(self, request: SipMessage, what: str) -> SipMessage:
        transport = self._transport
        if transport is None:
            raise RuntimeError("SipPhone is not open")
        first_via = request.get("via") or ""
        branch = _via_params(first_via).get("branch", "")
        loop = asyncio.get_running_loop()
        tx = _Transaction(loop.create_future())
        self._transactions[branch] = tx
        data = _serialize(request)
        deadline = time.monotonic() + self.timeout
        interval = self.t1
        try:
            while True:
                log.debug("SipPhone %s >>> %s", self.user, request.start_line)
                transport.sendto(data, self.registrar)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    return await asyncio.wait_for(
                        asyncio.shield(tx.future), timeout=min(interval, remaining)
                    )
                except TimeoutError:
                    pass
                if time.monotonic() >= deadline:
                    break
                # Timer E: double up to T2; after a provisional answer, retransmit every T2.
                interval = T2 if tx.provisional else min(interval * 2, T2)
        finally:
            self._transactions.pop(branch, None)
            if not tx.future.done():
                tx.future.cancel()
        raise SipError(f"{what} failed: no final answer within {self.timeout:g} s (timeout)")

    # -- incoming datagrams ------------------------------------------------------------

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if not data.strip():
            return  # keep-alive
        try:
            msg = parse_message(data)
        except ValueError as exc:
            log.debug("SipPhone %s: ignoring datagram from %s: %s", self.user, addr, exc)
            return
        if msg.is_response:
            self._on_response(msg)
        else:
            self._on_request(msg, addr)

    def _on_response(self, msg: SipMessage) -> None:
        log.debug("SipPhone %s <<< %s", self.user, msg.start_line)
        branch = msg.top_via_branch()
        tx = self._transactions.get(branch or "")
        if tx is None or tx.future.done():
            return  # stray or retransmitted response
        if msg.status < 200:
            tx.provisional = True
            return
        tx.future.set_result(msg)

    def _on_request(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        method = msg.method
        log.debug("SipPhone %s <<< %s from %s", self.user, msg.start_line, addr)
        if method == "ACK":
            return
        if method in ("OPTIONS", "NOTIFY"):
            status, reason = 200, "OK"
        else:
            status, reason = 405, "Method Not Allowed"
        self._reply(msg, addr, status, reason)
        self.requests_answered.append(method)

    def _reply(self, request: SipMessage, addr: tuple[Any, ...], status: int, reason: str) -> None:
        transport = self._transport
        if transport is None:
            return
        headers: list[tuple[str, str]] = []
        for i, via in enumerate(request.get_all("via")):
            headers.append(("Via", _stamp_via(via, addr) if i == 0 else via))
        from_value = request.get("from")
        if from_value is not None:
            headers.append(("From", from_value))
        to_value = request.get("to")
        if to_value is not None:
            if ";tag=" not in to_value.replace(" ", "").lower():
                to_value = f"{to_value};tag={self.from_tag}"
            headers.append(("To", to_value))
        for name in ("call-id", "cseq"):
            value = request.get(name)
            if value is not None:
                headers.append(("Call-ID" if name == "call-id" else "CSeq", value))
        if self._local is not None:
            headers.append(("Contact", f"<{self.contact_uri}>"))
        headers.append(("Allow", "OPTIONS, NOTIFY"))
        if request.method == "OPTIONS":
            headers.append(("Accept", "application/sdp"))
        headers.append(("User-Agent", self.user_agent))
        headers.append(("Content-Length", "0"))
        response = SipMessage(f"SIP/2.0 {status} {reason}", headers)
        log.debug("SipPhone %s >>> %s to %s", self.user, response.start_line, addr)
        transport.sendto(_serialize(response), addr)


def _stamp_via(via: str, addr: tuple[Any, ...]) -> str:
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


def _serialize(msg: SipMessage) -> bytes:
    lines = [msg.start_line]
    lines.extend(f"{name}: {value}" for name, value in msg.headers)
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8") + msg.body


# --------------------------------------------------------------------------- sync helpers


def register_blocking(
    user: str, password: str, *, expires: int = 300, **kwargs: Any
) -> Registration:
    """Register once and close the socket (for scripts; no event loop may be running).

    The phone does not stay open, so a registrar's qualify will not reach it afterwards.
    ``kwargs`` go to :class:`SipPhone` (``registrar=``, ``local_port=``, ...).
    """

    async def run() -> Registration:
        async with SipPhone(user, password, **kwargs) as phone:
            return await phone.register(expires)

    return asyncio.run(run())


def unregister_blocking(user: str, password: str, **kwargs: Any) -> Registration:
    """Remove the binding of ``<sip:USER@LOCAL_HOST:LOCAL_PORT>``.

    Pass the same ``local_port=`` as the registration used, since the Contact includes it.
    """

    async def run() -> Registration:
        async with SipPhone(user, password, **kwargs) as phone:
            return await phone.unregister()

    return asyncio.run(run())
