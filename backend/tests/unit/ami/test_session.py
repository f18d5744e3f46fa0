"""AmiSession against the fake AMI server: reconnect, backoff, keepalive, hooks, state."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC

import pytest

from ispbx.ami import AmiClient, AmiDisconnected, AmiSession, AmiState, AmiTarget
from ispbx.backoff import Backoff, jittered

from .fake_ami import FakeAmi, FakeConnection, wait_until

SessionFactory = Callable[..., AmiSession]


@pytest.fixture
async def make_session() -> AsyncIterator[SessionFactory]:
    sessions: list[AmiSession] = []

    def factory(port: int, secret: str = "s3cret", **kwargs: float) -> AmiSession:
        kwargs.setdefault("action_timeout", 2.0)
        session = AmiSession(AmiTarget("127.0.0.1", port, "ispbx", secret, **kwargs))
        sessions.append(session)
        return session

    yield factory
    for session in sessions:
        await session.stop()


# -- 7: our own reconnect loop ------------------------------------------------------------------


def test_backoff_doubles_from_initial_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.2, 30.0, fast_for=0)
    delays = [backoff.next_delay() for _ in range(11)]
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30, 30])
    backoff.reset()
    assert backoff.next_delay() == 0.2


def test_backoff_stays_short_for_the_first_two_minutes_then_reaches_the_cap() -> None:
    backoff = Backoff(0.2, 30.0)
    delays = [backoff.next_delay() for _ in range(40)]
    assert delays[:6] == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 4.0])
    first_minute = [d for i, d in enumerate(delays) if sum(delays[:i]) < 120]
    assert max(first_minute) == 4.0
    assert delays[-1] == 30.0


def test_jitter_stays_within_half_and_all_of_the_step() -> None:
    # panoramisk passed its delay through int(): 0.2 s became 0 s, a tight loop
    assert jittered(0.2, lambda: 0.0) == pytest.approx(0.1)
    assert jittered(0.2, lambda: 0.999999) == pytest.approx(0.2)
    assert all(0.1 <= jittered(0.2) <= 0.2 for _ in range(100))


async def test_start_never_blocks_and_refused_is_reported(
    make_session: SessionFactory, free_port: int
) -> None:
    session = make_session(free_port)
    started = time.monotonic()
    session.start()
    session.start()  # idempotent
    assert time.monotonic() - started < 0.05
    assert not session.state.connected
    await wait_until(lambda: session.state.last_error is not None, 1)
    assert session.state.last_error == f"connection refused (127.0.0.1:{free_port})"
    assert session.client is None
    with pytest.raises(AmiDisconnected):
        await session.action({"Action": "Ping"})


async def test_comes_up_within_a_second_after_the_server_returns(
    make_session: SessionFactory, free_port: int
) -> None:
    session = make_session(free_port)
    session.start()
    await asyncio.sleep(0.8)  # attempts at ~0, ~0.2, ~0.6; the next step is <= 0.8 s
    assert not session.state.connected
    fake = await FakeAmi(port=free_port).start()
    try:
        waited = await wait_until(lambda: session.state.connected, 1.5)
        assert waited < 1.0
        assert session.state.last_error is None
    finally:
        await session.stop()
        await fake.stop()


async def test_one_log_line_per_backoff_step_and_no_traceback(
    make_session: SessionFactory, free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ispbx.ami")
    session = make_session(free_port, backoff_initial=0.01, backoff_cap=0.04)
    session.start()
    await asyncio.sleep(0.6)  # ~20 attempts
    await session.stop()
    records = [r for r in caplog.records if r.name == "ispbx.ami.session"]
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert len(records) > 8  # many attempts ...
    assert len(warnings) == 3  # ... one warning per step: 0.01, 0.02, 0.04 (the cap)
    assert not any(r.exc_info for r in records)
    assert "connection refused" in warnings[0].getMessage()


async def test_wrong_secret_is_reported_and_retried(
    make_session: SessionFactory, fake: FakeAmi
) -> None:
    session = make_session(fake.port, secret="wrong")
    session.start()
    await wait_until(lambda: session.state.last_error is not None, 1)
    assert session.state.last_error == "authentication failed"
    assert not session.state.connected
    await wait_until(lambda: fake.logins_failed >= 3, 2)  # keeps retrying with backoff


# -- 5/6: login, async hooks --------------------------------------------------------------------


async def test_async_login_hooks_are_awaited_after_each_login(
    make_session: SessionFactory, fake: FakeAmi
) -> None:
    fake.endpoints = [{"ObjectName": "1001"}]
    seen: list[list[str]] = []

    async def snapshot(client: AmiClient) -> None:
        await asyncio.sleep(0.01)  # a hook that really awaits (panoramisk never awaited it)
        items = await client.list_action({"Action": "PJSIPShowEndpoints"})
        seen.append([item["ObjectName"] for item in items])

    async def broken(_client: AmiClient) -> None:
        raise RuntimeError("hook bug")

    session = make_session(fake.port)
    session.logins.add(broken)  # logged; the session stays up and later hooks run
    session.logins.add(snapshot)
    session.start()
    await wait_until(lambda: seen == [["1001"]])
    assert session.state.connected
    fake.drop_all()
    await wait_until(lambda: len(seen) == 2, 2)
    assert fake.logins_ok == 2


async def test_state_listener_and_since(make_session: SessionFactory, fake: FakeAmi) -> None:
    states: list[AmiState] = []
    session = make_session(fake.port)
    before = session.state.since
    assert before.tzinfo is UTC
    session.states.add(states.append)
    session.start()
    await wait_until(lambda: len(states) == 1)
    assert states[0].connected and states[0].last_error is None
    assert states[0].since >= before
    assert (states[0].host, states[0].port) == ("127.0.0.1", fake.port)
    assert session.client is not None
    fake.drop_all()
    await wait_until(lambda: len(states) == 2)
    assert not states[1].connected
    assert states[1].last_error == "connection closed by peer"
    await wait_until(lambda: len(states) == 3, 2)  # up again
    await session.stop()
    await session.stop()  # idempotent
    assert [s.connected for s in states] == [True, False, True, False]
    assert session.client is None


async def test_event_listeners_survive_reconnects(
    make_session: SessionFactory, fake: FakeAmi
) -> None:
    events: list[str] = []
    session = make_session(fake.port)
    session.events.add(lambda event: events.append(event["Event"]))
    session.start()
    await wait_until(lambda: session.state.connected)
    await fake.send_event({"Event": "PeerStatus"})
    await wait_until(lambda: "PeerStatus" in events)
    fake.drop_all()
    await wait_until(lambda: not session.state.connected)
    await wait_until(lambda: session.state.connected, 2)
    await fake.send_event({"Event": "ContactStatus"})
    await wait_until(lambda: "ContactStatus" in events)
    assert events.count("FullyBooted") == 2


# -- 9 + reconnect: drop in the middle of a list ------------------------------------------------


async def test_drop_mid_list_fails_fast_then_reconnects_and_reruns_hooks(
    make_session: SessionFactory, fake: FakeAmi
) -> None:
    fake.endpoints = [{"ObjectName": "1001"}, {"ObjectName": "1002"}]
    drops: list[dict[str, str]] = []

    async def drop_first_list(conn: FakeConnection, action: dict[str, str]) -> None:
        if drops:
            await conn.send_list(action, "EndpointList", fake.endpoints)
            return
        drops.append(action)
        await conn.reply(action, {"Response": "Success", "EventList": "start"})
        await conn.send({"Event": "EndpointList", "ActionID": action["ActionID"]})
        conn.close()

    logins: list[AmiClient] = []

    async def hook(client: AmiClient) -> None:
        logins.append(client)

    session = make_session(fake.port, action_timeout=5.0)
    session.logins.add(hook)
    session.start()
    await wait_until(lambda: len(logins) == 1)
    fake.handlers["pjsipshowendpoints"] = drop_first_list
    started = time.monotonic()
    with pytest.raises(AmiDisconnected):
        await session.list_action({"Action": "PJSIPShowEndpoints"})
    assert time.monotonic() - started < 0.5  # not the 5 s action timeout
    await wait_until(lambda: len(logins) == 2, 2)
    assert logins[0] is not logins[1]
    items = await session.list_action({"Action": "PJSIPShowEndpoints"})
    assert [item["ObjectName"] for item in items] == ["1001", "1002"]


# -- 8: keepalive ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error"), [("none", "not answering"), ("wrong", "keepalive failed")]
)
async def test_missing_or_wrong_pong_reconnects(
    make_session: SessionFactory, fake: FakeAmi, reply: str, error: str
) -> None:
    session = make_session(fake.port, ping_interval=0.2, silence_timeout=0.6)
    session.start()
    await wait_until(lambda: session.state.connected)
    await asyncio.sleep(0.5)
    assert session.state.connected  # Pongs keep it up
    assert "Ping" in fake.names()
    fake.ping_reply = reply  # type: ignore[assignment]
    went_down = await wait_until(lambda: not session.state.connected, 1.5)
    assert went_down < 0.9  # a quiet peer: the silence timeout (0.6 s) + one ping interval
    assert error in (session.state.last_error or "")
    fake.ping_reply = "pong"
    await wait_until(lambda: session.state.connected, 1)
    assert fake.logins_ok == 2


async def test_a_quiet_asterisk_is_not_answering_before_it_is_dropped(
    make_session: SessionFactory, fake: FakeAmi
) -> None:
    """Pings unanswered and nothing else on the wire: ``answering`` goes false after 1.5 ping
    intervals, the connection drops at the silence timeout, both measured from the last byte."""
    session = make_session(fake.port, ping_interval=0.2, silence_timeout=1.0)
    session.start()
    await wait_until(lambda: session.state.connected)
    fake.ping_reply = "none"
    await asyncio.sleep(0.25)  # the last Pong arrived at most one interval before
    client = session.client
    assert client is not None
    quiet = await wait_until(lambda: not session.answering, 1)
    assert session.state.connected
    assert client.silent_for >= 0.29  # 1.5 ping intervals
    assert quiet < 0.4
    await wait_until(lambda: not session.state.connected, 1.5)
    assert session.state.last_error is not None
    assert session.state.last_error.startswith("not answering: nothing received for 1.0")


async def test_a_slow_list_that_streams_is_not_mistaken_for_a_hung_asterisk(
    make_session: SessionFactory, fake: FakeAmi
) -> None:
    """A list that takes 5 silence timeouts but sends an item every 0.15 s; the Ping queued
    behind it is answered only when it ends (one action at a time per connection, as Asterisk)."""
    items = [{"ObjectName": str(n)} for n in range(20)]

    async def slow_list(conn: FakeConnection, action: dict[str, str]) -> None:
        action_id = action["ActionID"]
        await conn.send({"Response": "Success", "ActionID": action_id, "EventList": "start"})
        for item in items:
            await asyncio.sleep(0.15)
            await conn.send({"Event": "EndpointList", "ActionID": action_id, **item})
        await conn.send(
            {"Event": "EndpointListComplete", "ActionID": action_id, "EventList": "Complete"}
        )

    fake.handlers["pjsipshowendpoints"] = slow_list
    session = make_session(fake.port, ping_interval=0.2, silence_timeout=0.6)
    session.start()
    await wait_until(lambda: session.state.connected)
    drops: list[AmiState] = []
    session.states.add(drops.append)
    got = await session.list_action({"Action": "PJSIPShowEndpoints"}, timeout=10)
    assert [item["ObjectName"] for item in got] == [item["ObjectName"] for item in items]
    assert drops == []
    assert session.state.connected
    assert fake.logins_ok == 1


async def test_a_login_without_a_reply_says_not_answering(
    make_session: SessionFactory, fake: FakeAmi
) -> None:
    """The TCP connection is accepted (as the kernel does for a stopped Asterisk) but the login
    is never answered."""
    fake.login_reply = "silent"
    session = make_session(fake.port, connect_timeout=0.3)
    session.start()
    await wait_until(lambda: session.state.last_error is not None, 2)
    assert (
        session.state.last_error == f"not answering: no reply to the login (127.0.0.1:{fake.port})"
    )
