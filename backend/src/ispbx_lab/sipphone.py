"""The lab's SIP test phone: registers, answers calls and places them, over UDP on loopback.

Tests of the product use it to make a PJSIP endpoint of a real Asterisk really "online"
(registered, answering Asterisk's qualify OPTIONS), "offline", "Ringing" and "In use"; the demo
uses it for its phones. It is an honest user agent of its own (``ISPBX-Manager-lab-phone/0.1``):

- REGISTER / un-REGISTER with Digest authentication (401 or 407);
- an incoming INVITE gets 100 Trying and 180 Ringing, then, after ``ring_seconds``, 200 OK with an
  SDP answer for PCMU on an RTP port the phone binds (it never sends media); the 200 is
  retransmitted until the ACK comes; BYE gets 200; CANCEL gets 200 and the INVITE 487;
- :meth:`SipPhone.call` places a call (INVITE with Digest authentication, ACK) and
  :meth:`SipPhone.hangup` ends one (BYE, CANCEL while it rings, 486 to decline);
- OPTIONS and NOTIFY get 200 OK, anything else 405.

Only loopback addresses are accepted, for both the registrar and the local sockets.

Example::

    async with SipPhone("101", "101pass", registrar=("127.0.0.1", 5060)) as phone:
        await phone.register(expires=60)
        incoming = await phone.wait_for_call(within=10)  # answered after ring_seconds
        await incoming.ended.wait()
        outgoing = await phone.call("102")  # returns once answered
        await phone.hangup(outgoing)

Synchronous code (tests, scripts) uses :class:`ThreadedPhone`, :func:`register_blocking`,
:func:`unregister_blocking` and :func:`call_blocking`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeVar

from ispbx_lab.sdp import CONTENT_TYPE as SDP_CONTENT_TYPE
from ispbx_lab.sdp import SdpAudio, build_sdp, parse_sdp
from ispbx_lab.sipmsg import (
    Challenge,
    SipMessage,
    bracket_host,
    build_ack_for_failure,
    build_authorization,
    build_cancel,
    build_response,
    digest_response,
    hostport,
    loopback_host,
    new_branch,
    new_tag,
    parse_challenge,
    parse_message,
    parse_name_addr,
    pick_challenge,
    serialize,
    split_header_values,
    tag_of,
    uri_key,
    user_of,
    via_params,
    with_tag,
)

__all__ = [
    "USER_AGENT",
    "Call",
    "Challenge",
    "Registration",
    "SipError",
    "SipMessage",
    "SipPhone",
    "ThreadedPhone",
    "build_authorization",
    "call_blocking",
    "digest_response",
    "parse_challenge",
    "parse_message",
    "register_blocking",
    "unregister_blocking",
]

log = logging.getLogger(__name__)

USER_AGENT = "ISPBX-Manager-lab-phone/0.1"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY"
T1 = 0.5  # RFC 3261 round-trip estimate (s)
T2 = 4.0  # RFC 3261 maximum retransmit interval for non-INVITE requests and 2xx (s)
MAX_AUTH_ROUNDS = 3
INCOMING_QUEUE = 16  # incoming calls kept for wait_for_call(); older ones are dropped
ENDED_KEEP = 32.0  # s an ended call is remembered, to answer retransmissions (64*T1)
T = TypeVar("T")

CallState = Literal["ringing", "active", "ended"]


class SipError(Exception):
    """A REGISTER or a call failed: non-2xx final answer, timeout or an unusable challenge.

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


@dataclass(eq=False)
class Call:
    """One call of the phone (a SIP dialog), incoming or outgoing.

    States: ``ringing`` (incoming: 180 sent; outgoing: INVITE sent), ``active`` (200 OK sent or
    received), ``ended``. The times are ``time.monotonic()`` at the moment the phone sent or
    received the message that caused the change: ``ringing_at`` (180 sent / first 18x received),
    ``answered_at`` (200 sent / received), ``ended_at`` (BYE, CANCEL or final failure, either way).
    """

    direction: Literal["incoming", "outgoing"]
    call_id: str
    local_party: str  # our From (outgoing) or To (incoming) header value, with our tag
    remote_party: str  # the other side's, with its tag once known
    peer: tuple[str, int]  # where requests of the dialog go (Asterisk)
    rtp_port: int
    local_cseq: int
    state: CallState = "ringing"
    remote_target: str = ""  # the other side's Contact URI
    route_set: list[str] = field(default_factory=list)
    remote_audio: SdpAudio | None = None
    ringing_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: str = ""
    answered: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    # The INVITE of the dialog: theirs (incoming) or our last one (outgoing).
    invite: SipMessage | None = field(default=None, repr=False)
    # Incoming: our last provisional and final answer to it (resent on retransmissions).
    provisional: bytes | None = field(default=None, repr=False)
    final: bytes | None = field(default=None, repr=False)
    final_acked: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    # Outgoing: our ACK of the 2xx, and ACKs of failure answers by branch (resent on demand).
    ack: bytes | None = field(default=None, repr=False)
    failure_acks: dict[str, bytes] = field(default_factory=dict, repr=False)
    proceeding: bool = field(default=False, repr=False)  # outgoing: a 1xx came
    cancelling: bool = field(default=False, repr=False)
    rtp: socket.socket | None = field(default=None, repr=False)
    tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    @property
    def local_tag(self) -> str | None:
        return tag_of(self.local_party)

    @property
    def remote_tag(self) -> str | None:
        return tag_of(self.remote_party)

    @property
    def remote_user(self) -> str:
        """The other side's user (``103`` for a call from Asterisk's endpoint 103)."""
        return user_of(self.remote_party)


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
    """A client transaction waiting for its final answer (RFC 3261 17.1)."""

    future: asyncio.Future[SipMessage]
    request: SipMessage
    deadline: float
    invite_timeout: float | None = None  # INVITE: how long to wait once it is proceeding
    on_provisional: Callable[[SipMessage], None] | None = None
    call: Call | None = None
    provisional: bool = False


class SipPhone:
    """A SIP user agent for one account at a registrar over UDP (loopback only).

    While open (``async with``) it answers OPTIONS and NOTIFY (so a registrar's qualify sees it
    reachable) and calls: ``ring_seconds`` after the 180 it answers with 200 OK (``None``: it
    rings until :meth:`answer`, :meth:`hangup` or the caller's CANCEL). ``on_call_state`` is
    called with the :class:`Call` at each change of state.
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
        user_agent: str = USER_AGENT,
        timeout: float = 3.0,
        t1: float = T1,
        ring_seconds: float | None = 0.0,
        on_call_state: Callable[[Call], None] | None = None,
        unregister_on_exit: bool = False,
    ) -> None:
        self.user = user
        self.password = password
        self.auth_user = auth_user if auth_user is not None else user
        self.registrar: tuple[str, int] = (loopback_host(registrar[0]), int(registrar[1]))
        self.local_host = loopback_host(local_host)
        self._requested_port = local_port
        self.user_agent = user_agent
        self.timeout = timeout
        self.t1 = t1
        self.ring_seconds = ring_seconds
        self.on_call_state = on_call_state
        self.unregister_on_exit = unregister_on_exit

        self.call_id = f"{secrets.token_hex(12)}@{bracket_host(self.local_host)}"
        self.from_tag = new_tag()
        self._cseq = secrets.randbelow(1000) + 1
        self._nc: dict[str, int] = {}  # nonce -> last nonce-count used
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None
        self._local: tuple[str, int] | None = None
        # Client transactions by (branch, CSeq method): a CANCEL shares its INVITE's branch.
        self._transactions: dict[tuple[str, str], _Transaction] = {}
        self._lock: asyncio.Lock | None = None
        self._calls: dict[str, Call] = {}  # by Call-ID
        self._server_invites: dict[str, Call] = {}  # by the branch of their INVITE
        self._incoming: asyncio.Queue[Call] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
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
        self._incoming = asyncio.Queue(INCOMING_QUEUE)
        log.debug("SipPhone %s listening on %s", self.user, hostport(*self._local))

    async def close(self) -> None:
        """Close the sockets at once: calls end without a BYE, pending requests fail."""
        transport, protocol = self._transport, self._protocol
        if transport is None:
            return
        for call in list(self._calls.values()):
            self._end(call, "phone closed")
        tasks = [*self._tasks, *(t for c in self._calls.values() for t in c.tasks)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._transport = None
        self._protocol = None
        transport.close()
        for tx in self._transactions.values():
            if not tx.future.done():
                tx.future.set_exception(SipError("SipPhone closed while waiting for an answer"))
        self._transactions.clear()
        self._calls.clear()
        self._server_invites.clear()
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
            if self._transport is not None:
                await self.hangup_all()
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
        return f"sip:{self.user}@{hostport(*self.local_address)}"

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{bracket_host(self.registrar[0])}"

    @property
    def request_uri(self) -> str:
        return f"sip:{hostport(*self.registrar)}"

    @property
    def calls(self) -> list[Call]:
        """Calls not yet forgotten: the current ones and those ended in the last ~30 s."""
        return list(self._calls.values())

    def _require_open(self) -> asyncio.DatagramTransport:
        if self._transport is None or self._lock is None:
            raise RuntimeError("SipPhone is not open (use 'async with SipPhone(...)')")
        return self._transport

    # -- REGISTER ----------------------------------------------------------------------

    async def register(self, expires: int = 300) -> Registration:
        """REGISTER (answering a 401/407 Digest challenge) and return the 2xx outcome."""
        if expires < 0:
            raise ValueError("expires must be >= 0")
        self._require_open()
        assert self._lock is not None
        async with self._lock:
            reg = await self._register(expires)
        self.registered = reg.expires > 0
        return reg

    async def unregister(self) -> Registration:
        """REGISTER with ``Expires: 0`` (and ``;expires=0`` on the Contact)."""
        return await self.register(expires=0)

    async def _register(self, expires: int) -> Registration:
        what = f"REGISTER {self.aor} at {hostport(*self.registrar)}"
        auth_header: tuple[str, str] | None = None
        for _ in range(MAX_AUTH_ROUNDS + 1):
            request = self._build_register(expires, auth_header)
            response = await self._send_request(request, what)
            if 200 <= response.status < 300:
                return self._registration(response, expires)
            auth_header = self._answer_challenge(
                response, what, "REGISTER", self.request_uri, answered=auth_header is not None
            )
        raise SipError(f"{what} failed: too many challenges")

    def _answer_challenge(
        self, response: SipMessage, what: str, method: str, uri: str, *, answered: bool
    ) -> tuple[str, str]:
        """The (Proxy-)Authorization header answering a 401/407; SipError for anything else."""
        status = response.status
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
        # A challenge to an answered challenge means wrong credentials, unless the nonce
        # merely went stale.
        if answered and not challenge.stale:
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
            method=method,
            uri=uri,
            nc=nc,
        )
        return ("Authorization" if status == 401 else "Proxy-Authorization", value)

    @staticmethod
    def _challenge_of(response: SipMessage) -> Challenge:
        name = "www-authenticate" if response.status == 401 else "proxy-authenticate"
        values = response.get_all(name)
        if not values:
            raise ValueError(f"no {name} header")
        return pick_challenge(values)

    def _via(self, branch: str) -> str:
        return f"SIP/2.0/UDP {hostport(*self.local_address)};rport;branch={branch}"

    def _build_register(self, expires: int, auth: tuple[str, str] | None) -> SipMessage:
        self._cseq += 1
        contact = f"<{self.contact_uri}>"
        if expires == 0:
            contact += ";expires=0"
        headers: list[tuple[str, str]] = [
            ("Via", self._via(new_branch())),
            ("Max-Forwards", "70"),
            ("From", f"<{self.aor}>;tag={self.from_tag}"),
            ("To", f"<{self.aor}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self._cseq} REGISTER"),
            ("Contact", contact),
            ("Expires", str(expires)),
            ("Allow", ALLOW),
            ("User-Agent", self.user_agent),
        ]
        if auth is not None:
            headers.append(auth)
        headers.append(("Content-Length", "0"))
        return SipMessage(f"REGISTER {self.request_uri} SIP/2.0", headers)

    def _registration(self, response: SipMessage, requested: int) -> Registration:
        ours = uri_key(self.contact_uri)
        expires: int | None = None
        contact = self.contact_uri
        for line in response.get_all("contact"):
            for value in split_header_values(line):
                uri, params = parse_name_addr(value)
                if uri_key(uri) != ours:
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

    # -- placing calls -----------------------------------------------------------------

    async def call(self, target: str, *, answer_timeout: float = 35.0) -> Call:
        """Call ``target`` (an extension, or a ``sip:`` URI) through the registrar.

        Returns the answered call (ACK sent); raises SipError when it is refused, cancelled or
        unanswered within ``answer_timeout`` s of ringing. The call is in :attr:`calls` from
        the start, so another task may :meth:`hangup` (CANCEL) it while it rings.
        """
        self._require_open()
        uri = target if target.startswith("sip:") else f"sip:{target}@{hostport(*self.registrar)}"
        call = self._new_call(
            "outgoing",
            call_id=f"{secrets.token_hex(12)}@{bracket_host(self.local_host)}",
            local_party=f"<{self.aor}>;tag={new_tag()}",
            remote_party=f"<{uri}>",
            peer=self.registrar,
        )
        what = f"INVITE {uri}"
        try:
            response = await self._invite_until_final(call, uri, what, answer_timeout)
            if not 200 <= response.status < 300:
                raise SipError(
                    f"{what} failed: {response.start_line}",
                    status=response.status,
                    reason=response.reason,
                )
        except BaseException as exc:
            if call.proceeding and not call.cancelling and call.invite is not None:
                # Cancelled or timed out while it rings: tell the other side at once (a task
                # might not run before the phone closes), best effort.
                self._send(serialize(build_cancel(call.invite)), call.peer)
            self._end(call, _failure_reason(exc))
            raise
        self._confirm_outgoing(call, response)
        if call.cancelling:  # our CANCEL crossed the callee's 200: end the call properly
            await self._bye(call, "cancelled")
            raise SipError(f"{what} cancelled", status=487, reason="Request Terminated")
        return call

    async def _invite_until_final(
        self, call: Call, uri: str, what: str, answer_timeout: float
    ) -> SipMessage:
        """Send the INVITE, answering up to MAX_AUTH_ROUNDS challenges; the final answer."""
        auth: tuple[str, str] | None = None
        for _ in range(MAX_AUTH_ROUNDS + 1):
            call.local_cseq += 1
            call.invite = self._build_invite(call, uri, auth)
            response = await self._send_request(
                call.invite,
                what,
                destination=call.peer,
                invite_timeout=answer_timeout,
                on_provisional=lambda msg: self._on_progress(call, msg),
                call=call,
            )
            if response.status not in (401, 407) or call.cancelling:
                return response
            auth = self._answer_challenge(response, what, "INVITE", uri, answered=auth is not None)
        raise SipError(f"{what} failed: too many challenges")

    def _build_invite(self, call: Call, uri: str, auth: tuple[str, str] | None) -> SipMessage:
        body = build_sdp(self.local_host, call.rtp_port, session_id=call.local_cseq + 1000)
        headers: list[tuple[str, str]] = [
            ("Via", self._via(new_branch())),
            ("Max-Forwards", "70"),
            ("From", call.local_party),
            ("To", call.remote_party),
            ("Call-ID", call.call_id),
            ("CSeq", f"{call.local_cseq} INVITE"),
            ("Contact", f"<{self.contact_uri}>"),
            ("Allow", ALLOW),
            ("User-Agent", self.user_agent),
        ]
        if auth is not None:
            headers.append(auth)
        headers.append(("Content-Type", SDP_CONTENT_TYPE))
        headers.append(("Content-Length", str(len(body))))
        return SipMessage(f"INVITE {uri} SIP/2.0", headers, body)

    def _on_progress(self, call: Call, response: SipMessage) -> None:
        call.proceeding = True
        if response.status in (180, 183) and call.ringing_at is None:
            call.ringing_at = time.monotonic()
            self._notify(call)

    def _confirm_outgoing(self, call: Call, response: SipMessage) -> None:
        """A 2xx to our INVITE: the dialog is established; ACK it (RFC 3261 13.2.2.4)."""
        call.answered_at = time.monotonic()
        call.remote_party = response.get("to") or call.remote_party
        contact = response.get("contact")
        invite = call.invite
        assert invite is not None
        call.remote_target = (
            parse_name_addr(split_header_values(contact)[0])[0]
            if contact
            else invite.start_line.split()[1]
        )
        routes = [v for line in response.get_all("record-route") for v in split_header_values(line)]
        call.route_set = routes[::-1]  # a UAC's route set is the Record-Route reversed
        with contextlib.suppress(ValueError):
            call.remote_audio = parse_sdp(response.body)
        ack = self._in_dialog_request(call, "ACK", cseq=invite.cseq()[0])
        call.ack = serialize(ack)
        self._send(call.ack, call.peer)
        call.state = "active"
        call.answered.set()
        self._notify(call)

    # -- answering and ending calls ----------------------------------------------------

    async def wait_for_call(self, within: float) -> Call:
        """The next incoming call (ringing or already answered); TimeoutError after ``within`` s."""
        self._require_open()
        assert self._incoming is not None
        return await asyncio.wait_for(self._incoming.get(), within)

    async def answer(self, call: Call) -> None:
        """Answer a ringing incoming call: 200 OK with the SDP answer."""
        if call.direction != "incoming" or call.state != "ringing":
            return
        body = build_sdp(self.local_host, call.rtp_port, session_id=call.local_cseq)
        self._final_to_invite(call, 200, "OK", body)
        call.answered_at = time.monotonic()
        call.state = "active"
        call.answered.set()
        self._notify(call)

    async def hangup(self, call: Call) -> None:
        """End a call: BYE when answered, CANCEL while our call rings, 486 to decline theirs."""
        if call.state == "ended" or self._transport is None:
            return
        if call.state == "active":
            await self._bye(call, "local BYE")
        elif call.direction == "incoming":
            call.ended_at = time.monotonic()
            self._final_to_invite(call, 486, "Busy Here")
            self._end(call, "declined")
        else:
            await self._send_cancel(call)

    async def hangup_all(self, within: float = 1.0) -> None:
        """Hang up every current call, waiting at most ``within`` s for the answers."""
        current = [c for c in self._calls.values() if c.state != "ended"]
        if not current:
            return
        results = await asyncio.wait(
            [asyncio.ensure_future(self.hangup(c)) for c in current], timeout=within
        )
        for task in results[1]:
            task.cancel()

    async def _bye(self, call: Call, reason: str) -> None:
        call.ended_at = time.monotonic()
        bye = self._in_dialog_request(call, "BYE")
        self._end(call, reason)
        try:
            await self._send_request(bye, f"BYE {call.call_id}", destination=call.peer)
        except SipError as err:
            log.info("SipPhone %s: %s", self.user, err)

    async def _send_cancel(self, call: Call) -> None:
        if call.invite is None or call.cancelling:
            return
        call.cancelling = True
        call.ended_at = time.monotonic()
        try:
            await self._send_request(
                build_cancel(call.invite), f"CANCEL {call.call_id}", destination=call.peer
            )
        except SipError as err:
            log.info("SipPhone %s: %s", self.user, err)

    def _in_dialog_request(self, call: Call, method: str, *, cseq: int | None = None) -> SipMessage:
        """A request inside the dialog (RFC 3261 12.2.1.1); ACK reuses the INVITE's CSeq."""
        if cseq is None:
            call.local_cseq += 1
            cseq = call.local_cseq
        headers: list[tuple[str, str]] = [
            ("Via", self._via(new_branch())),
            ("Max-Forwards", "70"),
            *(("Route", route) for route in call.route_set),
            ("From", call.local_party),
            ("To", call.remote_party),
            ("Call-ID", call.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("User-Agent", self.user_agent),
            ("Content-Length", "0"),
        ]
        target = call.remote_target or f"sip:{hostport(*call.peer)}"
        return SipMessage(f"{method} {target} SIP/2.0", headers)

    # -- call bookkeeping --------------------------------------------------------------

    def _new_call(
        self,
        direction: Literal["incoming", "outgoing"],
        *,
        call_id: str,
        local_party: str,
        remote_party: str,
        peer: tuple[str, int],
    ) -> Call:
        self._forget_old_calls()
        rtp = _bind_rtp(self.local_host)
        call = Call(
            direction=direction,
            call_id=call_id,
            local_party=local_party,
            remote_party=remote_party,
            peer=peer,
            rtp_port=int(rtp.getsockname()[1]),
            local_cseq=secrets.randbelow(1000) + 1,
            rtp=rtp,
        )
        self._calls[call_id] = call
        return call

    def _forget_old_calls(self) -> None:
        cutoff = time.monotonic() - ENDED_KEEP
        for key, call in list(self._calls.items()):
            if call.state == "ended" and (call.ended_at or 0) < cutoff:
                del self._calls[key]
        for key, call in list(self._server_invites.items()):
            if call.state == "ended" and (call.ended_at or 0) < cutoff:
                del self._server_invites[key]

    def _end(self, call: Call, reason: str) -> None:
        if call.state == "ended":
            return
        call.state = "ended"
        call.ended_at = call.ended_at or time.monotonic()
        call.end_reason = reason
        if call.rtp is not None:
            call.rtp.close()
            call.rtp = None
        call.ended.set()
        self._notify(call)

    def _notify(self, call: Call) -> None:
        if self.on_call_state is None:
            return
        try:
            self.on_call_state(call)
        except Exception:  # a broken observer must not break the phone
            log.exception("SipPhone %s: on_call_state failed", self.user)

    def _spawn(self, coro: Coroutine[Any, Any, None], call: Call | None = None) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        owner = self._tasks if call is None else call.tasks
        owner.add(task)
        task.add_done_callback(owner.discard)

    # -- client transaction (RFC 3261 17.1) --------------------------------------------

    async def _send_request(
        self,
        request: SipMessage,
        what: str,
        *,
        destination: tuple[str, int] | None = None,
        invite_timeout: float | None = None,
        on_provisional: Callable[[SipMessage], None] | None = None,
        call: Call | None = None,
    ) -> SipMessage:
        """Send ``request`` until its final answer (retransmitting per Timer A/E).

        Non-INVITE: gives up after ``self.timeout``. INVITE (``invite_timeout`` set): gives up
        after ``self.timeout`` without any answer, or ``invite_timeout`` after the last
        provisional one; it is not retransmitted once it is proceeding.
        """
        transport = self._require_open()
        address = destination or self.registrar
        branch = via_params(request.get("via") or "").get("branch", "")
        loop = asyncio.get_running_loop()
        tx = _Transaction(
            loop.create_future(),
            request,
            time.monotonic() + self.timeout,
            invite_timeout,
            on_provisional,
            call,
        )
        key = (branch, request.method)
        self._transactions[key] = tx
        data = serialize(request)
        interval = self.t1
        try:
            log.debug("SipPhone %s >>> %s", self.user, request.start_line)
            transport.sendto(data, address)
            while True:
                remaining = tx.deadline - time.monotonic()
                if remaining <= 0:
                    break
                proceeding = invite_timeout is not None and tx.provisional
                wait = remaining if proceeding else min(interval, remaining)
                try:
                    return await asyncio.wait_for(asyncio.shield(tx.future), timeout=wait)
                except TimeoutError:
                    pass
                if time.monotonic() >= tx.deadline:
                    break
                if invite_timeout is not None and tx.provisional:
                    continue  # a proceeding INVITE is not retransmitted
                log.debug("SipPhone %s >>> %s (again)", self.user, request.start_line)
                transport.sendto(data, address)
                if invite_timeout is not None:
                    interval *= 2  # Timer A doubles without a cap
                else:
                    # Timer E: double up to T2; after a provisional answer, every T2.
                    interval = T2 if tx.provisional else min(interval * 2, T2)
        finally:
            self._transactions.pop(key, None)
            if not tx.future.done():
                tx.future.cancel()
        raise SipError(f"{what} failed: no final answer in time (timeout)")

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
            self._on_response(msg, addr)
        else:
            self._on_request(msg, addr)

    def _on_response(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        log.debug("SipPhone %s <<< %s", self.user, msg.start_line)
        branch = msg.top_via_branch() or ""
        tx = self._transactions.get((branch, msg.cseq()[1]))
        if tx is None or tx.future.done():
            self._on_late_response(msg, branch)
            return
        if msg.status < 200:
            tx.provisional = True
            if tx.invite_timeout is not None:
                tx.deadline = time.monotonic() + tx.invite_timeout
            if tx.on_provisional is not None:
                tx.on_provisional(msg)
            return
        if tx.request.method == "INVITE" and msg.status >= 300:
            self._ack_failure(tx.request, msg, tx.call, addr)
        tx.future.set_result(msg)

    def _ack_failure(
        self, invite: SipMessage, response: SipMessage, call: Call | None, addr: tuple[Any, ...]
    ) -> None:
        ack = serialize(build_ack_for_failure(invite, response))
        if call is not None:
            call.failure_acks[invite.top_via_branch() or ""] = ack
        self._send(ack, (str(addr[0]), int(addr[1])))

    def _on_late_response(self, msg: SipMessage, branch: str) -> None:
        """A retransmitted final answer to an INVITE: send our ACK again."""
        if msg.cseq()[1] != "INVITE" or msg.status < 200:
            return
        call = self._calls.get(msg.get("call-id") or "")
        if call is None:
            return
        ack = call.ack if msg.status < 300 else call.failure_acks.get(branch)
        if ack is not None:
            self._send(ack, call.peer)

    def _on_request(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        method = msg.method
        log.debug("SipPhone %s <<< %s from %s", self.user, msg.start_line, addr)
        if method == "ACK":
            self._on_ack(msg)
            return
        handlers: dict[str, Callable[[SipMessage, tuple[Any, ...]], None]] = {
            "INVITE": self._on_invite,
            "CANCEL": self._on_cancel,
            "BYE": self._on_bye,
        }
        handler = handlers.get(method)
        if handler is not None:
            handler(msg, addr)
        elif method in ("OPTIONS", "NOTIFY"):
            self._reply(msg, addr, 200, "OK")
        else:
            self._reply(msg, addr, 405, "Method Not Allowed")
        self.requests_answered.append(method)

    def _on_invite(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        known = self._server_invites.get(msg.top_via_branch() or "")
        if known is not None:  # a retransmission: repeat our last answer
            data = known.final or known.provisional
            if data is not None:
                self._send(data, known.peer)
            return
        if tag_of(msg.get("to")) is not None:
            self._on_reinvite(msg, addr)
            return
        call = self._new_call(
            "incoming",
            call_id=msg.get("call-id") or "",
            local_party=with_tag(msg.get("to") or f"<{self.contact_uri}>", new_tag()),
            remote_party=msg.get("from") or "",
            peer=(str(addr[0]), int(addr[1])),
        )
        call.invite = msg
        contact = msg.get("contact")
        if contact:
            call.remote_target = parse_name_addr(split_header_values(contact)[0])[0]
        call.route_set = [
            v for line in msg.get_all("record-route") for v in split_header_values(line)
        ]
        self._server_invites[msg.top_via_branch() or ""] = call
        self._send_provisional(call, 100, "Trying", tagged=False)
        if msg.body:
            try:
                call.remote_audio = parse_sdp(msg.body)
            except ValueError:
                call.remote_audio = None
            if call.remote_audio is None or not call.remote_audio.offers_pcmu():
                call.ended_at = time.monotonic()
                self._final_to_invite(call, 488, "Not Acceptable Here")
                self._end(call, "no common codec (PCMU only)")
                return
        self._send_provisional(call, 180, "Ringing", tagged=True)
        call.ringing_at = time.monotonic()
        self._queue_incoming(call)
        self._notify(call)
        if self.ring_seconds is not None:
            self._spawn(self._answer_after(call, self.ring_seconds), call)

    def _on_reinvite(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        """A re-INVITE (session refresh, hold…) of an answered call: 200 with the same SDP."""
        call = self._calls.get(msg.get("call-id") or "")
        if call is None or call.state != "active" or tag_of(msg.get("to")) != call.local_tag:
            self._reply(msg, addr, 481, "Call/Transaction Does Not Exist")
            return
        call.invite = msg
        call.final_acked = asyncio.Event()
        self._server_invites[msg.top_via_branch() or ""] = call
        body = build_sdp(self.local_host, call.rtp_port, session_id=call.local_cseq, version=2)
        self._final_to_invite(call, 200, "OK", body)

    def _on_ack(self, msg: SipMessage) -> None:
        call = self._calls.get(msg.get("call-id") or "")
        if call is not None and call.direction == "incoming":
            call.final_acked.set()

    def _on_cancel(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        call = self._server_invites.get(msg.top_via_branch() or "")
        if call is None:
            self._reply(msg, addr, 481, "Call/Transaction Does Not Exist")
            return
        self._reply(msg, addr, 200, "OK", to_tag=call.local_tag)
        if call.state == "ringing":
            call.ended_at = time.monotonic()
            self._final_to_invite(call, 487, "Request Terminated")
            self._end(call, "cancelled by the caller")

    def _on_bye(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        call = self._calls.get(msg.get("call-id") or "")
        if call is None or tag_of(msg.get("to")) != call.local_tag:
            self._reply(msg, addr, 481, "Call/Transaction Does Not Exist")
            return
        self._reply(msg, addr, 200, "OK")
        if call.state != "ended":
            call.ended_at = time.monotonic()
            self._end(call, "remote BYE")

    def _queue_incoming(self, call: Call) -> None:
        queue = self._incoming
        if queue is None:
            return
        if queue.full():
            queue.get_nowait()  # nobody waits for calls: keep the newest ones
        queue.put_nowait(call)

    async def _answer_after(self, call: Call, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.answer(call)

    # -- server transaction (RFC 3261 17.2.1, 13.3.1.4) --------------------------------

    def _send_provisional(self, call: Call, status: int, reason: str, *, tagged: bool) -> None:
        assert call.invite is not None
        response = self._response(
            call.invite, call.peer, status, reason, to_tag=call.local_tag if tagged else None
        )
        call.provisional = serialize(response)
        self._send(call.provisional, call.peer)

    def _final_to_invite(self, call: Call, status: int, reason: str, body: bytes = b"") -> None:
        """Send the final answer to the call's INVITE and repeat it (Timer G) until the ACK."""
        assert call.invite is not None
        response = self._response(
            call.invite, call.peer, status, reason, to_tag=call.local_tag, body=body
        )
        call.final = serialize(response)
        self._send(call.final, call.peer)
        self._spawn(self._repeat_final(call, call.final, call.final_acked, status), call)

    async def _repeat_final(
        self, call: Call, data: bytes, acked: asyncio.Event, status: int
    ) -> None:
        interval = self.t1
        deadline = time.monotonic() + 64 * self.t1
        while time.monotonic() < deadline:
            if call.state == "ended" and status < 300:
                return  # a BYE came before the ACK: nothing left to confirm
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(acked.wait(), min(interval, deadline - time.monotonic()))
                return
            if time.monotonic() >= deadline:
                break
            self._send(data, call.peer)
            interval = min(interval * 2, T2)
        if 200 <= status < 300 and call.state == "active":
            log.info("SipPhone %s: no ACK for the 200 of %s, hanging up", self.user, call.call_id)
            await self._bye(call, "no ACK")

    # -- answers -----------------------------------------------------------------------

    def _response(
        self,
        request: SipMessage,
        addr: tuple[Any, ...],
        status: int,
        reason: str,
        *,
        to_tag: str | None,
        body: bytes = b"",
    ) -> SipMessage:
        headers: list[tuple[str, str]] = []
        if self._local is not None and status != 100:
            headers.append(("Contact", f"<{self.contact_uri}>"))
        if status != 100:
            headers.append(("Allow", ALLOW))
        if request.method == "OPTIONS":
            headers.append(("Accept", SDP_CONTENT_TYPE))
        headers.append(("User-Agent", self.user_agent))
        return build_response(
            request,
            status,
            reason,
            source=addr,
            to_tag=to_tag,
            headers=headers,
            body=body,
            content_type=SDP_CONTENT_TYPE if body else None,
        )

    def _reply(
        self,
        request: SipMessage,
        addr: tuple[Any, ...],
        status: int,
        reason: str,
        *,
        to_tag: str | None = None,
    ) -> None:
        """Answer an out-of-call request (or BYE/CANCEL) straight back to its sender."""
        tag = to_tag or self.from_tag
        response = self._response(request, addr, status, reason, to_tag=tag)
        self._send(serialize(response), (str(addr[0]), int(addr[1])))

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self._transport
        if transport is None:
            return
        log.debug("SipPhone %s >>> %s to %s", self.user, data.split(b"\r\n", 1)[0], addr)
        transport.sendto(data, addr)


def _bind_rtp(host: str) -> socket.socket:
    """A UDP socket for the call's audio (never read), on an even port when one comes up, as
    RTP's convention has it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for attempt in range(20):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind((host, 0))
        if sock.getsockname()[1] % 2 == 0 or attempt == 19:
            return sock
        sock.close()
    raise AssertionError("unreachable")


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, SipError):
        return str(exc)
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return f"failed: {exc!r}"


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


def call_blocking(
    user: str,
    password: str,
    target: str,
    *,
    seconds: float = 5.0,
    answer_timeout: float = 35.0,
    on_call_state: Callable[[Call], None] | None = None,
    **kwargs: Any,
) -> Call:
    """Place one call, keep it up ``seconds`` s (or until the other side hangs up), hang up.

    For scripts (no event loop may be running). Raises SipError when the call fails; Ctrl-C
    hangs up before KeyboardInterrupt propagates.
    """

    async def run() -> Call:
        async with SipPhone(user, password, on_call_state=on_call_state, **kwargs) as phone:
            call = await phone.call(target, answer_timeout=answer_timeout)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.ended.wait(), seconds)
            await phone.hangup(call)
            return call

    return asyncio.run(run())


class ThreadedPhone:
    """A :class:`SipPhone` on its own event loop in a daemon thread.

    Synchronous code (tests, scripts) drives it with plain calls while the phone keeps
    answering Asterisk (qualify, INVITE, BYE) in the background. Every method waits at most
    ``wait`` s more than the SIP exchange it runs. Use it as a context manager::

        with ThreadedPhone("101", "101pass", registrar=("127.0.0.1", port)) as phone:
            phone.register(60)
            call = phone.wait_for_call(10)
    """

    def __init__(self, user: str, password: str, *, wait: float = 5.0, **kwargs: Any) -> None:
        self.phone = SipPhone(user, password, **kwargs)
        self.wait = wait
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"sipphone-{user}", daemon=True
        )
        self._thread.start()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout + self.wait)

    def __enter__(self) -> ThreadedPhone:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        self._run(self.phone.open(), 0)

    def register(self, expires: int = 300) -> Registration:
        return self._run(self.phone.register(expires), self.phone.timeout)

    def unregister(self) -> Registration:
        return self._run(self.phone.unregister(), self.phone.timeout)

    def call(self, target: str, *, answer_timeout: float = 35.0) -> Call:
        return self._run(
            self.phone.call(target, answer_timeout=answer_timeout),
            self.phone.timeout + answer_timeout,
        )

    def wait_for_call(self, timeout: float) -> Call:
        return self._run(self.phone.wait_for_call(timeout), timeout)

    def answer(self, call: Call) -> None:
        self._run(self.phone.answer(call), 0)

    def hangup(self, call: Call) -> None:
        self._run(self.phone.hangup(call), self.phone.timeout)

    def wait_answered(self, call: Call, timeout: float) -> bool:
        return self._wait_event(call.answered, timeout)

    def wait_ended(self, call: Call, timeout: float) -> bool:
        return self._wait_event(call.ended, timeout)

    def _wait_event(self, event: asyncio.Event, timeout: float) -> bool:
        async def wait() -> bool:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
            return event.is_set()

        return self._run(wait(), timeout)

    def close(self) -> None:
        """Hang up current calls, un-REGISTER if asked to, close, and stop the thread."""
        if not self._loop.is_running():
            return
        try:
            self._run(self.phone.__aexit__(None, None, None), self.phone.timeout + 1)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()
