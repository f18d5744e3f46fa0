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

from ispbx_lab.sipphone import (
    USER_AGENT,
    Challenge,
    Registration,
    SipError,
    SipMessage,
    SipPhone,
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
