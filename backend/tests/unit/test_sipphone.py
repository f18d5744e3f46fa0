"""Unit tests of the SIP test phone, against a tiny fake registrar on 127.0.0.1 (no Asterisk)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from ispbx_lab.sdp import SdpAudio, build_sdp, parse_sdp
from ispbx_lab.sipmsg import (
    build_ack_for_failure,
    build_cancel,
    build_response,
    serialize,
    tag_of,
    user_of,
    with_tag,
)
from ispbx_lab.sipphone import (
    USER_AGENT,
    Challenge,
    Registration,
    SipError,
    SipMessage,
    SipPhone,
    ThreadedPhone,
    build_authorization,
    digest_response,
    parse_challenge,
    parse_message,
    register_blocking,
)

REALM = "asterisk"
NONCE = "1700000000/4f1f0d0b2c3a"
OPAQUE = "5ccc069c403ebaf9f0171e9517f40e41"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _auth_params(value: str) -> dict[str, str]:
    assert value.startswith("Digest ")
    return {
        m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
        for m in re.finditer(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', value[7:])
    }


# --------------------------------------------------------------------------- digest


def test_digest_rfc2617_worked_example() -> None:
    # RFC 2617 section 3.5.
    response = digest_response(
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_digest_rfc2617_example_via_challenge_header() -> None:
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert challenge.qop == ["auth", "auth-int"]
    assert challenge.algorithm is None
    value = build_authorization(
        challenge,
        username="Mufasa",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nc=1,
        cnonce="0a4f113b",
    )
    params = _auth_params(value)
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["qop"] == "auth"
    assert params["nc"] == "00000001"
    assert params["cnonce"] == "0a4f113b"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert "algorithm" not in params


def test_digest_without_qop_rfc2069() -> None:
    ha1 = _md5("1001:asterisk:pw")
    ha2 = _md5("REGISTER:sip:127.0.0.1:5060")
    expected = _md5(f"{ha1}:abc:{ha2}")
    got = digest_response(
        username="1001",
        realm="asterisk",
        password="pw",
        method="REGISTER",
        uri="sip:127.0.0.1:5060",
        nonce="abc",
        algorithm="MD5",
    )
    assert got == expected


def test_digest_sha256_rfc7616_example() -> None:
    # RFC 7616 section 3.9.1, SHA-256 variant.
    response = digest_response(
        username="Mufasa",
        realm="http-auth@example.org",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        qop="auth",
        nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        algorithm="SHA-256",
    )
    assert response == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def test_parse_challenge_rejects_non_digest() -> None:
    with pytest.raises(ValueError):
        parse_challenge('Basic realm="x"')
    ch = parse_challenge('Digest realm="a",nonce="n",algorithm=MD5,stale=TRUE')
    assert ch == Challenge(realm="a", nonce="n", algorithm="MD5", qop=[], stale=True)


def test_parse_message_compact_and_folded_headers() -> None:
    msg = parse_message(
        b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bKx\r\n"
        b"m: <sip:a@127.0.0.1:5>;expires=60,\r\n <sip:b@127.0.0.1:6>;expires=30\r\n"
        b"l: 0\r\n\r\n"
    )
    assert msg.status == 200
    assert msg.top_via_branch() == "z9hG4bKx"
    assert msg.get("Contact") == "<sip:a@127.0.0.1:5>;expires=60, <sip:b@127.0.0.1:6>;expires=30"


def test_only_loopback_addresses() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SipPhone("1001", "pw", registrar=("192.0.2.1", 5060))
    with pytest.raises(ValueError, match="loopback"):
        SipPhone("1001", "pw", local_host="0.0.0.0")
    with pytest.raises(ValueError, match="loopback"):
        SipPhone("1001", "pw", registrar=("example.com", 5060))


# --------------------------------------------------------------------------- fake registrar


@dataclass
class FakeRegistrar(asyncio.DatagramProtocol):
    """Challenges REGISTER with 401 (or 407), verifies the digest, answers 200 with bindings."""

    password: str = "secret"
    user: str = "1001"
    qop: bool = True
    algorithm: str | None = "MD5"
    proxy: bool = False
    silent: bool = False
    drop_first: int = 0
    other_contact: bool = True
    requests: list[SipMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    bindings: dict[str, int] = field(default_factory=dict)
    auth_ok: list[bool] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.raw.append(data)
        msg = parse_message(data)
        if msg.is_response:
            return
        self.requests.append(msg)
        if self.silent:
            return
        if self.drop_first > 0:
            self.drop_first -= 1
            return
        header = "proxy-authorization" if self.proxy else "authorization"
        auth = msg.get(header)
        if auth is None:
            self._challenge(msg, addr)
            return
        if not self._check(msg, auth):
            self.auth_ok.append(False)
            self._challenge(msg, addr)
            return
        self.auth_ok.append(True)
        uri = re.search(r"<([^>]+)>", msg.get("contact") or "")
        assert uri is not None
        expires = int(msg.get("expires") or "3600")
        if "expires=0" in (msg.get("contact") or ""):
            expires = 0
        if expires == 0:
            self.bindings.pop(uri.group(1), None)
        else:
            self.bindings[uri.group(1)] = min(expires, 120)  # registrar may shorten
        contacts = [f"<{u}>;expires={e}" for u, e in self.bindings.items()]
        if self.other_contact:
            contacts.insert(0, "<sip:1001@127.0.0.1:9;transport=udp>;expires=77")
        extra = [("Contact", ", ".join(contacts))] if contacts else []
        self._respond(msg, addr, "200 OK", [*extra, ("Expires", str(expires))])

    def _challenge(self, msg: SipMessage, addr: tuple[Any, ...]) -> None:
        parts = [f'realm="{REALM}"', f'nonce="{NONCE}"', f'opaque="{OPAQUE}"']
        if self.algorithm:
            parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append('qop="auth"')
        name = "Proxy-Authenticate" if self.proxy else "WWW-Authenticate"
        status = "407 Proxy Authentication Required" if self.proxy else "401 Unauthorized"
        self._respond(msg, addr, status, [(name, "Digest " + ",".join(parts))])

    def _check(self, msg: SipMessage, value: str) -> bool:
        p = _auth_params(value)
        request_uri = msg.start_line.split()[1]
        ha1 = _md5(f"{self.user}:{REALM}:{self.password}")
        ha2 = _md5(f"REGISTER:{request_uri}")
        if self.qop:
            qop_ok = (
                p.get("qop") == "auth"
                and re.fullmatch(r"[0-9a-f]{8}", p.get("nc", "")) is not None
                and bool(p.get("cnonce"))
            )
            expected = _md5(f"{ha1}:{NONCE}:{p.get('nc')}:{p.get('cnonce')}:auth:{ha2}")
        else:
            qop_ok = "qop" not in p and "nc" not in p
            expected = _md5(f"{ha1}:{NONCE}:{ha2}")
        return (
            qop_ok
            and p["username"] == self.user
            and p["realm"] == REALM
            and p["nonce"] == NONCE
            and p["uri"] == request_uri
            and p.get("opaque") == OPAQUE
            and p.get("algorithm") == self.algorithm
            and p["response"] == expected
        )

    def _respond(
        self,
        msg: SipMessage,
        addr: tuple[Any, ...],
        status: str,
        extra: list[tuple[str, str]],
    ) -> None:
        assert self.transport is not None
        lines = [f"SIP/2.0 {status}"]
        for via in msg.get_all("via"):
            lines.append(f"Via: {via.replace(';rport', f';rport={addr[1]}')}")
        lines += [
            f"From: {msg.get('from')}",
            f"To: {msg.get('to')};tag=registrar",
            f"Call-ID: {msg.get('call-id')}",
            f"CSeq: {msg.get('cseq')}",
        ]
        lines += [f"{k}: {v}" for k, v in extra]
        lines.append("Content-Length: 0")
        self.transport.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), addr)


async def _start(registrar: FakeRegistrar) -> FakeRegistrar:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: registrar, local_addr=("127.0.0.1", 0))
    return registrar


@pytest.fixture
async def registrar() -> AsyncIterator[FakeRegistrar]:
    reg = await _start(FakeRegistrar())
    yield reg
    assert reg.transport is not None
    reg.transport.close()


def _phone(reg: FakeRegistrar, password: str = "secret", **kwargs: Any) -> SipPhone:
    return SipPhone(reg.user, password, registrar=reg.address, **kwargs)


# --------------------------------------------------------------------------- REGISTER


async def test_register_and_unregister(registrar: FakeRegistrar) -> None:
    async with _phone(registrar) as phone:
        host, port = phone.local_address
        assert host == "127.0.0.1" and port > 0
        reg = await phone.register(expires=300)
        contact = f"sip:1001@127.0.0.1:{port}"
        assert reg == Registration(status=200, expires=120, contact=contact, call_id=phone.call_id)
        assert registrar.bindings == {contact: 120}
        assert phone.registered

        reg2 = await phone.register(expires=60)
        assert reg2.expires == 60
        assert reg2.call_id == reg.call_id

        gone = await phone.unregister()
        assert gone.status == 200 and gone.expires == 0 and gone.call_id == reg.call_id
        assert registrar.bindings == {}
        assert not phone.registered

    # 3 registrations x (challenge + answer)
    reqs = registrar.requests
    assert len(reqs) == 6
    assert registrar.auth_ok == [True, True, True]
    assert len({r.get("call-id") for r in reqs}) == 1
    cseqs = [r.cseq() for r in reqs]
    assert [m for _, m in cseqs] == ["REGISTER"] * 6
    assert [n for n, _ in cseqs] == list(range(cseqs[0][0], cseqs[0][0] + 6))
    branches = [r.top_via_branch() or "" for r in reqs]
    assert all(b.startswith("z9hG4bK") for b in branches)
    assert len(set(branches)) == 6
    first = reqs[0]
    assert first.start_line == f"REGISTER sip:127.0.0.1:{registrar.address[1]} SIP/2.0"
    assert re.fullmatch(
        rf"SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK\w+", first.get("via") or ""
    )
    assert first.get("to") == "<sip:1001@127.0.0.1>"
    assert re.fullmatch(r"<sip:1001@127\.0\.0\.1>;tag=\w+", first.get("from") or "")
    assert first.get("contact") == f"<sip:1001@127.0.0.1:{port}>"
    assert first.get("expires") == "300"
    assert first.get("max-forwards") == "70"
    assert first.get("user-agent") == USER_AGENT == "ISPBX-Manager-lab-phone/0.1"
    last = reqs[-1]
    assert last.get("contact") == f"<sip:1001@127.0.0.1:{port}>;expires=0"
    assert last.get("expires") == "0"


@pytest.mark.parametrize(
    ("qop", "algorithm", "proxy"),
    [(False, "MD5", False), (True, None, False), (False, None, False), (True, "MD5", True)],
)
async def test_register_challenge_variants(qop: bool, algorithm: str | None, proxy: bool) -> None:
    reg = await _start(FakeRegistrar(qop=qop, algorithm=algorithm, proxy=proxy))
    try:
        async with _phone(reg) as phone:
            result = await phone.register(expires=30)
        assert result.status == 200 and result.expires == 30
        assert reg.auth_ok == [True]
        header = "proxy-authorization" if proxy else "authorization"
        assert reg.requests[-1].get(header) is not None
    finally:
        assert reg.transport is not None
        reg.transport.close()


async def test_auth_user_differs_from_user() -> None:
    reg = await _start(FakeRegistrar(user="authname"))
    try:
        async with SipPhone("authname", "secret", registrar=reg.address) as phone:
            assert (await phone.register()).status == 200
        async with SipPhone("1001", "secret", registrar=reg.address, auth_user="authname") as phone:
            assert (await phone.register()).status == 200
            assert reg.requests[-1].get("to") == "<sip:1001@127.0.0.1>"
    finally:
        assert reg.transport is not None
        reg.transport.close()


async def test_wrong_password_raises_with_status(registrar: FakeRegistrar) -> None:
    async with _phone(registrar, password="wrong") as phone:
        with pytest.raises(SipError, match="401 Unauthorized") as info:
            await phone.register()
    assert info.value.status == 401
    assert registrar.auth_ok == [False]
    assert len(registrar.requests) == 2


async def test_non_2xx_final_answer_raises() -> None:
    class Forbidding(FakeRegistrar):
        def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
            msg = parse_message(data)
            self.requests.append(msg)
            self._respond(msg, addr, "403 Forbidden", [])

    reg = await _start(Forbidding())
    try:
        async with _phone(reg) as phone:
            with pytest.raises(SipError, match=r"SIP/2\.0 403 Forbidden") as info:
                await phone.register()
        assert info.value.status == 403
    finally:
        assert reg.transport is not None
        reg.transport.close()


async def test_silent_registrar_times_out_with_retransmissions() -> None:
    reg = await _start(FakeRegistrar(silent=True))
    try:
        async with _phone(reg, timeout=0.5, t1=0.05) as phone:
            started = time.monotonic()
            with pytest.raises(SipError, match="timeout") as info:
                await phone.register()
            elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 1.0
        assert info.value.status is None
        # Timer E: sent at 0, 0.05, 0.15, 0.35 (then 0.5 s reached) -> same bytes each time.
        assert 3 <= len(reg.raw) <= 5
        assert len(set(reg.raw)) == 1
    finally:
        assert reg.transport is not None
        reg.transport.close()


async def test_default_timer_e_gives_up_within_timeout() -> None:
    reg = await _start(FakeRegistrar(silent=True))
    try:
        async with _phone(reg, timeout=0.6) as phone:
            started = time.monotonic()
            with pytest.raises(SipError):
                await phone.register()
            assert time.monotonic() - started < 1.0
        assert len(reg.raw) == 2  # T1 = 0.5 s: sent at 0 and 0.5
    finally:
        assert reg.transport is not None
        reg.transport.close()


async def test_retransmission_recovers_lost_request() -> None:
    reg = await _start(FakeRegistrar(drop_first=1))
    try:
        async with _phone(reg, t1=0.05) as phone:
            result = await phone.register()
        assert result.status == 200
        assert reg.raw[0] == reg.raw[1]  # a retransmission is byte-identical
    finally:
        assert reg.transport is not None
        reg.transport.close()


async def test_unregister_on_exit(registrar: FakeRegistrar) -> None:
    async with _phone(registrar, unregister_on_exit=True) as phone:
        await phone.register()
        assert registrar.bindings
    assert registrar.bindings == {}


async def test_local_address_requires_open_socket() -> None:
    phone = SipPhone("1001", "pw")
    with pytest.raises(RuntimeError):
        _ = phone.local_address
    with pytest.raises(RuntimeError):
        await phone.register()


def test_register_blocking() -> None:
    async def main() -> tuple[Registration, FakeRegistrar]:
        reg = await _start(FakeRegistrar())
        try:
            result = await asyncio.to_thread(
                register_blocking, "1001", "secret", registrar=reg.address, expires=45
            )
        finally:
            assert reg.transport is not None
            reg.transport.close()
        return result, reg

    result, reg = asyncio.run(main())
    assert result.status == 200 and result.expires == 45
    assert reg.auth_ok == [True]


# --------------------------------------------------------------------------- incoming


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.queue.put_nowait(data)


async def _send_to_phone(phone: SipPhone, method: str) -> SipMessage:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(_Client, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        request = (
            f"{method} sip:1001@127.0.0.1:{phone.local_address[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-{method.lower()}-1\r\n"
            "From: <sip:1001@127.0.0.1>;tag=ast1\r\n"
            f"To: <sip:1001@127.0.0.1:{phone.local_address[1]}>\r\n"
            f"Call-ID: {method.lower()}-call@127.0.0.1\r\n"
            f"CSeq: 42 {method}\r\n"
            "Max-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        transport.sendto(request.encode(), phone.local_address)
        return parse_message(await asyncio.wait_for(client.queue.get(), 1.0))
    finally:
        transport.close()


async def test_phone_answers_options_and_notify() -> None:
    async with SipPhone("1001", "pw") as phone:
        options = await _send_to_phone(phone, "OPTIONS")
        notify = await _send_to_phone(phone, "NOTIFY")
        other = await _send_to_phone(phone, "MESSAGE")
    assert options.start_line == "SIP/2.0 200 OK"
    assert options.cseq() == (42, "OPTIONS")
    assert options.get("call-id") == "options-call@127.0.0.1"
    via = options.get("via") or ""
    assert via.startswith("SIP/2.0/UDP 127.0.0.1:")
    assert "branch=z9hG4bK-options-1" in via and re.search(r"rport=\d+", via)
    assert options.get("from") == "<sip:1001@127.0.0.1>;tag=ast1"
    assert re.search(r";tag=\w+$", options.get("to") or "")
    assert notify.status == 200 and notify.cseq() == (42, "NOTIFY")
    assert other.status == 405
    assert phone.requests_answered == ["OPTIONS", "NOTIFY", "MESSAGE"]


async def test_phone_ignores_garbage_and_keepalives() -> None:
    async with SipPhone("1001", "pw") as phone:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        transport.sendto(b"\r\n\r\n", phone.local_address)
        transport.sendto(b"hello", phone.local_address)
        transport.close()
        options = await _send_to_phone(phone, "OPTIONS")
        assert options.status == 200


# --------------------------------------------------------------------------- messages and SDP

ASTERISK_OFFER = (
    b"v=0\r\no=- 1519 1519 IN IP4 127.0.0.1\r\ns=Asterisk\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 18320 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
INVITE_FROM = '"Front Desk" <sip:103@127.0.0.1>;tag=ast-tag-1'


def _request(
    method: str,
    *,
    target: str,
    via_port: int,
    branch: str,
    call_id: str = "call-1@127.0.0.1",
    cseq: int = 1,
    to: str = "<sip:101@127.0.0.1>",
    from_: str = INVITE_FROM,
    body: bytes = b"",
    extra: str = "",
) -> bytes:
    head = (
        f"{method} {target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{via_port};rport;branch={branch}\r\n"
        f"From: {from_}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: <sip:127.0.0.1:{via_port}>\r\nMax-Forwards: 70\r\n{extra}"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_build_response_copies_the_transaction_headers_and_adds_a_to_tag() -> None:
    request = parse_message(
        _request("INVITE", target="sip:101@127.0.0.1:5", via_port=7, branch="z9hG4bKa").replace(
            b"Max-Forwards", b"Via: SIP/2.0/UDP 127.0.0.9:9;branch=z9hG4bKb\r\nMax-Forwards"
        )
    )
    response = build_response(
        request, 180, "Ringing", source=("127.0.0.2", 7000), to_tag="t1", headers=[("X", "y")]
    )
    assert response.start_line == "SIP/2.0 180 Ringing"
    assert response.get_all("via") == [
        "SIP/2.0/UDP 127.0.0.1:7;rport=7000;branch=z9hG4bKa;received=127.0.0.2",
        "SIP/2.0/UDP 127.0.0.9:9;branch=z9hG4bKb",
    ]
    assert response.get("from") == INVITE_FROM
    assert response.get("to") == "<sip:101@127.0.0.1>;tag=t1"
    assert response.get("call-id") == "call-1@127.0.0.1"
    assert response.get("cseq") == "1 INVITE"
    assert response.get("x") == "y"
    assert response.get("content-length") == "0"
    tagged = parse_message(serialize(response))
    again = build_response(tagged, 200, "OK", source=("127.0.0.1", 7), to_tag="other", body=b"v=0")
    assert again.get("to") == "<sip:101@127.0.0.1>;tag=t1"  # an existing tag is kept
    assert again.get("content-length") == "3" and again.get("content-type") is None


def test_failure_ack_and_cancel_belong_to_the_invite_transaction() -> None:
    invite = parse_message(
        _request(
            "INVITE",
            target="sip:102@127.0.0.1:5060",
            via_port=7,
            branch="z9hG4bKinv",
            cseq=5,
            to="<sip:102@127.0.0.1>",
            extra="Route: <sip:127.0.0.1:5060;lr>\r\n",
        )
    )
    answer = parse_message(
        b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 127.0.0.1:7;branch=z9hG4bKinv\r\n"
        b"To: <sip:102@127.0.0.1>;tag=callee\r\nCSeq: 5 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    ack = build_ack_for_failure(invite, answer)
    cancel = build_cancel(invite)
    for message, method in ((ack, "ACK"), (cancel, "CANCEL")):
        assert message.start_line == f"{method} sip:102@127.0.0.1:5060 SIP/2.0"
        assert message.top_via_branch() == "z9hG4bKinv"
        assert message.cseq() == (5, method)
        assert message.get("call-id") == invite.get("call-id")
        assert message.get("from") == invite.get("from")
        assert message.get("route") == "<sip:127.0.0.1:5060;lr>"
    assert ack.get("to") == "<sip:102@127.0.0.1>;tag=callee"
    assert cancel.get("to") == "<sip:102@127.0.0.1>"


def test_tags_and_users_of_name_addrs() -> None:
    assert tag_of(INVITE_FROM) == "ast-tag-1"
    assert tag_of("<sip:101@127.0.0.1>") is None
    assert tag_of("sip:101@127.0.0.1;tag=x") == "x"
    assert with_tag("<sip:a@h>", "t") == "<sip:a@h>;tag=t"
    assert with_tag("<sip:a@h>;tag=u", "t") == "<sip:a@h>;tag=u"
    assert user_of(INVITE_FROM) == "103"
    assert user_of("<sip:127.0.0.1:5060>") == ""


def test_sdp_answer_round_trips() -> None:
    body = build_sdp("127.0.0.1", 40000, session_id=7)
    text = body.decode()
    assert text.endswith("\r\n") and "m=audio 40000 RTP/AVP 0\r\n" in text
    assert text.count("m=") == 1
    assert parse_sdp(body) == SdpAudio("127.0.0.1", 40000, (0,), {0: "PCMU/8000"}, "sendrecv")
    assert "IN IP6 ::1" in build_sdp("::1", 40000, session_id=7).decode()


def test_sdp_of_asterisk_offers_pcmu() -> None:
    audio = parse_sdp(ASTERISK_OFFER)
    assert (audio.address, audio.port, audio.payload_types) == ("127.0.0.1", 18320, (0, 8, 101))
    assert audio.rtpmap[101] == "telephone-event/8000"
    assert audio.offers_pcmu()


def test_sdp_takes_the_first_audio_stream_and_its_own_address() -> None:
    body = (
        b"v=0\r\nc=IN IP4 127.0.0.5\r\nm=video 5000 RTP/AVP 96\r\nc=IN IP4 127.0.0.6\r\n"
        b"m=audio 6000 RTP/AVP 96\r\nc=IN IP4 127.0.0.7\r\na=rtpmap:96 pcmu/8000\r\na=recvonly\r\n"
        b"m=audio 7000 RTP/AVP 0\r\n"
    )
    audio = parse_sdp(body)
    assert (audio.address, audio.port, audio.direction) == ("127.0.0.7", 6000, "recvonly")
    assert audio.offers_pcmu()  # by its rtpmap, under a dynamic payload type
    no_own_address = parse_sdp(b"v=0\nc=IN IP4 127.0.0.5\nm=audio 6000 RTP/AVP 8\n")
    assert no_own_address.address == "127.0.0.5"
    assert not no_own_address.offers_pcmu()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 5000 RTP/AVP 96\r\n",
        b"v=0\r\nm=audio 1 RTP/AVP 0",
    ],
)
def test_sdp_without_a_usable_audio_stream_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_sdp(body)


# --------------------------------------------------------------------------- calls


class FakePbx(asyncio.DatagramProtocol):
    """Plays Asterisk's side of a call: the test sends what it wants and reads what came."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[tuple[SipMessage, tuple[Any, ...]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.inbox.put_nowait((parse_message(data), addr))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes | SipMessage, addr: tuple[Any, ...]) -> None:
        assert self.transport is not None
        self.transport.sendto(data if isinstance(data, bytes) else serialize(data), addr)

    async def next(self, within: float = 1.0) -> SipMessage:
        return (await asyncio.wait_for(self.inbox.get(), within))[0]

    async def expect(self, start: str, within: float = 1.0) -> SipMessage:
        """The next message whose start line begins with ``start`` (others are skipped)."""
        deadline = time.monotonic() + within
        while True:
            message = await self.next(max(0.01, deadline - time.monotonic()))
            if message.start_line.startswith(start):
                return message

    def quiet(self) -> list[str]:
        """Start lines received and not read yet."""
        lines = []
        while not self.inbox.empty():
            lines.append(self.inbox.get_nowait()[0].start_line)
        return lines

    def answer(
        self,
        request: SipMessage,
        addr: tuple[Any, ...],
        status: int,
        reason: str,
        *,
        to_tag: str | None = "pbx-tag",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        response = build_response(
            request,
            status,
            reason,
            source=addr,
            to_tag=to_tag,
            headers=headers or [],
            body=body,
            content_type="application/sdp" if body else None,
        )
        self.send(response, addr)


@pytest.fixture
async def pbx() -> AsyncIterator[FakePbx]:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(FakePbx, local_addr=("127.0.0.1", 0))
    yield protocol
    assert protocol.transport is not None
    protocol.transport.close()


def _call_phone(pbx: FakePbx, **kwargs: Any) -> SipPhone:
    return SipPhone("101", "secret", registrar=("127.0.0.1", pbx.port), **kwargs)


def _invite(phone: SipPhone, pbx: FakePbx, *, branch: str = "z9hG4bKinv1", **kwargs: Any) -> bytes:
    kwargs.setdefault("body", ASTERISK_OFFER)
    return _request(
        "INVITE",
        target=f"sip:101@127.0.0.1:{phone.local_address[1]}",
        via_port=pbx.port,
        branch=branch,
        **kwargs,
    )


def _port_is_bound(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


async def test_incoming_call_rings_answers_with_sdp_and_ends_on_bye(pbx: FakePbx) -> None:
    states: list[str] = []
    async with _call_phone(
        pbx, ring_seconds=0.1, t1=0.02, on_call_state=lambda c: states.append(c.state)
    ) as phone:
        phone_addr = phone.local_address
        pbx.send(_invite(phone, pbx), phone_addr)
        trying = await pbx.expect("SIP/2.0 100")
        ringing = await pbx.expect("SIP/2.0 180")
        assert tag_of(trying.get("to")) is None
        tag = tag_of(ringing.get("to"))
        assert tag
        assert ringing.get("user-agent") == "ISPBX-Manager-lab-phone/0.1"
        assert ringing.get("contact") == f"<sip:101@127.0.0.1:{phone_addr[1]}>"
        call = await phone.wait_for_call(1)
        assert call.state == "ringing" and call.remote_user == "103"

        ok = await pbx.expect("SIP/2.0 200")
        assert call.ringing_at and call.answered_at
        assert 0.09 <= call.answered_at - call.ringing_at < 0.5
        assert tag_of(ok.get("to")) == tag
        assert ok.get("content-type") == "application/sdp"
        assert ok.cseq() == (1, "INVITE")
        answer = parse_sdp(ok.body)
        assert answer.address == "127.0.0.1" and answer.payload_types == (0,)
        assert answer.port == call.rtp_port and answer.port % 2 == 0
        assert _port_is_bound(answer.port)
        assert call.remote_audio is not None and call.remote_audio.port == 18320

        again = await pbx.expect("SIP/2.0 200", within=0.5)  # repeated until the ACK
        assert again.body == ok.body
        ack_to = ok.get("to") or ""
        pbx.send(
            _request(
                "ACK", target=phone.contact_uri, via_port=pbx.port, branch="z9hG4bKack1", to=ack_to
            ),
            phone_addr,
        )
        await asyncio.sleep(0.2)
        assert [line for line in pbx.quiet() if line.startswith("SIP/2.0 200")] in (
            [],
            [ok.start_line],
        )
        assert call.state == "active" and call.answered.is_set()

        pbx.send(
            _request(
                "BYE",
                target=phone.contact_uri,
                via_port=pbx.port,
                branch="z9hG4bKbye1",
                cseq=2,
                to=ack_to,
            ),
            phone_addr,
        )
        bye_ok = await pbx.expect("SIP/2.0 200")
        assert bye_ok.cseq() == (2, "BYE")
        await asyncio.wait_for(call.ended.wait(), 1)
        assert call.end_reason == "remote BYE"
        assert call.ended_at is not None and call.ended_at >= call.answered_at
        assert not _port_is_bound(answer.port)  # the RTP socket is closed with the call
    assert states == ["ringing", "active", "ended"]


async def test_retransmitted_invite_gets_the_last_answer_again(pbx: FakePbx) -> None:
    async with _call_phone(pbx, ring_seconds=None) as phone:
        pbx.send(_invite(phone, pbx), phone.local_address)
        first = await pbx.expect("SIP/2.0 180")
        pbx.send(_invite(phone, pbx), phone.local_address)
        repeated = await pbx.expect("SIP/2.0 180")
        assert serialize(repeated) == serialize(first)
        assert len([c for c in phone.calls if c.state != "ended"]) == 1


async def test_cancel_while_ringing_answers_487(pbx: FakePbx) -> None:
    async with _call_phone(pbx, ring_seconds=None, t1=0.02) as phone:
        pbx.send(_invite(phone, pbx), phone.local_address)
        ringing = await pbx.expect("SIP/2.0 180")
        call = await phone.wait_for_call(1)
        cancel = _request(
            "CANCEL", target=phone.contact_uri, via_port=pbx.port, branch="z9hG4bKinv1"
        )
        pbx.send(cancel, phone.local_address)
        answers = [await pbx.next(), await pbx.next()]
        by_method = {m.cseq()[1]: m for m in answers}
        assert by_method["CANCEL"].status == 200
        terminated = by_method["INVITE"]
        assert terminated.start_line == "SIP/2.0 487 Request Terminated"
        assert tag_of(terminated.get("to")) == tag_of(ringing.get("to"))
        assert call.state == "ended" and call.end_reason == "cancelled by the caller"
        assert (await pbx.expect("SIP/2.0 487", within=0.5)).status == 487  # until the ACK
        ack = build_ack_for_failure(parse_message(_invite(phone, pbx)), terminated)
        pbx.send(ack, phone.local_address)
        await asyncio.sleep(0.15)
        pbx.quiet()
        await asyncio.sleep(0.3)
        assert pbx.quiet() == []


async def test_requests_outside_any_call_get_481(pbx: FakePbx) -> None:
    async with _call_phone(pbx) as phone:
        for method in ("CANCEL", "BYE"):
            pbx.send(
                _request(
                    method,
                    target=phone.contact_uri,
                    via_port=pbx.port,
                    branch="z9hG4bKx",
                    to="<sip:101@127.0.0.1>;tag=nope",
                ),
                phone.local_address,
            )
            answer = await pbx.next()
            assert answer.start_line == "SIP/2.0 481 Call/Transaction Does Not Exist", method


async def test_offer_without_pcmu_is_refused_with_488(pbx: FakePbx) -> None:
    offer = ASTERISK_OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 8 101")
    async with _call_phone(pbx) as phone:
        pbx.send(_invite(phone, pbx, body=offer), phone.local_address)
        assert (await pbx.next()).status == 100
        refused = await pbx.next()
        assert refused.start_line == "SIP/2.0 488 Not Acceptable Here"
        assert all(c.state == "ended" for c in phone.calls)


async def test_declining_a_ringing_call_answers_486(pbx: FakePbx) -> None:
    async with _call_phone(pbx, ring_seconds=None) as phone:
        pbx.send(_invite(phone, pbx), phone.local_address)
        call = await phone.wait_for_call(1)
        await phone.hangup(call)
        assert (await pbx.expect("SIP/2.0 486")).cseq() == (1, "INVITE")
        assert call.end_reason == "declined"


async def _answered_incoming(phone: SipPhone, pbx: FakePbx) -> tuple[Any, SipMessage]:
    pbx.send(_invite(phone, pbx), phone.local_address)
    ok = await pbx.expect("SIP/2.0 200")
    pbx.send(
        _request(
            "ACK",
            target=phone.contact_uri,
            via_port=pbx.port,
            branch="z9hG4bKack",
            to=ok.get("to") or "",
        ),
        phone.local_address,
    )
    return await phone.wait_for_call(1), ok


async def test_hanging_up_an_answered_call_sends_bye_in_the_dialog(pbx: FakePbx) -> None:
    async with _call_phone(pbx) as phone:
        call, ok = await _answered_incoming(phone, pbx)
        hangup = asyncio.ensure_future(phone.hangup(call))
        bye = await pbx.expect("BYE")
        assert call.state == "ended" and call.ended_at is not None
        assert bye.start_line == f"BYE sip:127.0.0.1:{pbx.port} SIP/2.0"  # their Contact
        assert bye.get("from") == ok.get("to")  # our side, with our tag
        assert bye.get("to") == INVITE_FROM
        assert bye.get("call-id") == "call-1@127.0.0.1"
        number, method = bye.cseq()
        assert method == "BYE" and number == call.local_cseq
        assert bye.top_via_branch() not in (None, "z9hG4bKinv1")
        pbx.answer(bye, ("127.0.0.1", phone.local_address[1]), 200, "OK", to_tag=None)
        await asyncio.wait_for(hangup, 1)
        assert call.end_reason == "local BYE"


async def test_an_unacknowledged_200_ends_the_call_with_bye(pbx: FakePbx) -> None:
    async with _call_phone(pbx, t1=0.01, timeout=0.2) as phone:
        pbx.send(_invite(phone, pbx), phone.local_address)
        call = await phone.wait_for_call(1)
        bye = await pbx.expect("BYE", within=2)
        assert bye.get("call-id") == "call-1@127.0.0.1"
        assert call.end_reason == "no ACK"


def _proxy_challenge(pbx: FakePbx, invite: SipMessage, addr: tuple[Any, ...]) -> None:
    challenge = f'Digest realm="{REALM}",nonce="{NONCE}",algorithm=MD5,qop="auth"'
    pbx.answer(invite, addr, 401, "Unauthorized", headers=[("WWW-Authenticate", challenge)])


async def test_placing_a_call_authenticates_acks_and_hangs_up(pbx: FakePbx) -> None:
    states: list[str] = []
    async with _call_phone(pbx, on_call_state=lambda c: states.append(c.state)) as phone:
        placing = asyncio.ensure_future(phone.call("102"))
        first, addr = await asyncio.wait_for(pbx.inbox.get(), 1)
        assert first.start_line == f"INVITE sip:102@127.0.0.1:{pbx.port} SIP/2.0"
        offer = parse_sdp(first.body)
        assert offer.payload_types == (0,) and _port_is_bound(offer.port)
        assert first.get("to") == f"<sip:102@127.0.0.1:{pbx.port}>"
        assert re.fullmatch(r"<sip:101@127\.0\.0\.1>;tag=\w+", first.get("from") or "")
        _proxy_challenge(pbx, first, addr)

        ack = await pbx.expect("ACK")  # the 401 is ACKed inside its transaction
        assert ack.top_via_branch() == first.top_via_branch()
        assert ack.cseq() == (first.cseq()[0], "ACK")
        assert ack.get("to") == f"<sip:102@127.0.0.1:{pbx.port}>;tag=pbx-tag"

        second = await pbx.expect("INVITE")
        assert second.cseq()[0] == first.cseq()[0] + 1
        assert second.get("call-id") == first.get("call-id")
        assert second.get("from") == first.get("from")
        params = _auth_params(second.get("authorization") or "")
        ha1 = _md5(f"101:{REALM}:secret")
        ha2 = _md5(f"INVITE:sip:102@127.0.0.1:{pbx.port}")
        expected = _md5(f"{ha1}:{NONCE}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
        assert params["response"] == expected

        pbx.answer(second, addr, 100, "Trying", to_tag=None)
        pbx.answer(second, addr, 180, "Ringing")
        await asyncio.sleep(0.05)
        call = next(c for c in phone.calls if c.direction == "outgoing")
        assert call.state == "ringing" and call.ringing_at is not None
        contact = [("Contact", f"<sip:127.0.0.1:{pbx.port}>")]
        answer_sdp = build_sdp("127.0.0.1", 18322, session_id=1)
        pbx.answer(second, addr, 200, "OK", headers=contact, body=answer_sdp)
        assert await asyncio.wait_for(placing, 1) is call
        assert call.state == "active" and call.remote_audio is not None
        assert call.remote_audio.port == 18322

        ack2 = await pbx.expect("ACK")
        assert ack2.start_line == f"ACK sip:127.0.0.1:{pbx.port} SIP/2.0"
        assert ack2.cseq() == (second.cseq()[0], "ACK")
        assert ack2.top_via_branch() != second.top_via_branch()
        assert tag_of(ack2.get("to")) == "pbx-tag"
        pbx.answer(second, addr, 200, "OK", headers=contact, body=answer_sdp)  # lost ACK?
        assert serialize(await pbx.expect("ACK")) == serialize(ack2)

        hangup = asyncio.ensure_future(phone.hangup(call))
        bye = await pbx.expect("BYE")
        assert bye.cseq() == (second.cseq()[0] + 1, "BYE")
        assert bye.get("from") == first.get("from")
        assert tag_of(bye.get("to")) == "pbx-tag"
        pbx.answer(bye, addr, 200, "OK", to_tag=None)
        await asyncio.wait_for(hangup, 1)
    assert states == ["ringing", "active", "ended"]
    assert not _port_is_bound(offer.port)


async def test_a_refused_call_raises_with_the_status_and_acks(pbx: FakePbx) -> None:
    async with _call_phone(pbx) as phone:
        placing = asyncio.ensure_future(phone.call("102"))
        invite, addr = await asyncio.wait_for(pbx.inbox.get(), 1)
        pbx.answer(invite, addr, 486, "Busy Here")
        with pytest.raises(SipError, match="486 Busy Here") as info:
            await asyncio.wait_for(placing, 1)
        assert info.value.status == 486
        ack = await pbx.expect("ACK")
        assert ack.top_via_branch() == invite.top_via_branch()
        assert all(c.state == "ended" for c in phone.calls)


async def test_hanging_up_a_ringing_call_cancels_it(pbx: FakePbx) -> None:
    async with _call_phone(pbx) as phone:
        placing = asyncio.ensure_future(phone.call("102"))
        invite, addr = await asyncio.wait_for(pbx.inbox.get(), 1)
        pbx.answer(invite, addr, 180, "Ringing")
        await asyncio.sleep(0.05)
        call = phone.calls[0]
        hangup = asyncio.ensure_future(phone.hangup(call))
        cancel = await pbx.expect("CANCEL")
        assert cancel.top_via_branch() == invite.top_via_branch()
        assert cancel.cseq() == (invite.cseq()[0], "CANCEL")
        assert cancel.get("to") == invite.get("to")
        pbx.answer(cancel, addr, 200, "OK")
        pbx.answer(invite, addr, 487, "Request Terminated")
        await asyncio.wait_for(hangup, 1)
        with pytest.raises(SipError) as info:
            await asyncio.wait_for(placing, 1)
        assert info.value.status == 487
        assert (await pbx.expect("ACK")).cseq() == (invite.cseq()[0], "ACK")
        assert call.state == "ended"


async def test_an_unanswered_invite_times_out_and_is_retransmitted(pbx: FakePbx) -> None:
    async with _call_phone(pbx, timeout=0.3, t1=0.05) as phone:
        with pytest.raises(SipError, match="timeout"):
            await phone.call("102")
        invites = pbx.quiet()
        assert 3 <= len(invites) <= 4  # Timer A: 0, 0.05, 0.15 (then 0.35 > 0.3)
        assert set(invites) == {f"INVITE sip:102@127.0.0.1:{pbx.port} SIP/2.0"}


def test_threaded_phone_answers_a_call_while_the_test_blocks() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        _, fake = await loop.create_datagram_endpoint(FakePbx, local_addr=("127.0.0.1", 0))
        try:
            phone = await asyncio.to_thread(
                ThreadedPhone, "101", "secret", registrar=("127.0.0.1", fake.port)
            )
            await asyncio.to_thread(phone.open)
            try:
                fake.send(_invite(phone.phone, fake), phone.phone.local_address)
                call = await asyncio.to_thread(phone.wait_for_call, 2)
                assert await asyncio.to_thread(phone.wait_answered, call, 2)
                assert (await fake.expect("SIP/2.0 200")).status == 200
            finally:
                await asyncio.to_thread(phone.close)
        finally:
            assert fake.transport is not None
            fake.transport.close()

    asyncio.run(scenario())


async def test_a_ringing_call_whose_task_is_cancelled_sends_cancel(pbx: FakePbx) -> None:
    async with _call_phone(pbx) as phone:
        placing = asyncio.ensure_future(phone.call("102"))
        invite, addr = await asyncio.wait_for(pbx.inbox.get(), 1)
        pbx.answer(invite, addr, 180, "Ringing")
        await asyncio.sleep(0.05)
        placing.cancel()  # e.g. Ctrl-C in `python -m ispbx_lab call`
        with pytest.raises(asyncio.CancelledError):
            await placing
    cancel = await pbx.expect("CANCEL")  # sent although the phone closed right after
    assert cancel.top_via_branch() == invite.top_via_branch()
