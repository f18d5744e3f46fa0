"""AmiClient against the fake AMI server: one test (at least) per panoramisk 1.4 defect fixed."""

from __future__ import annotations

import asyncio
import time

import pytest

from ispbx.ami import (
    AmiActionError,
    AmiAuthError,
    AmiClient,
    AmiDisconnected,
    AmiTimeout,
    AmiValueError,
)

from .fake_ami import FakeAmi, FakeConnection, wait_until

ENDPOINTS = [
    {"ObjectType": "endpoint", "ObjectName": "1001", "DeviceState": "Not in use"},
    {"ObjectType": "endpoint", "ObjectName": "1002", "DeviceState": "In use"},
    {"ObjectType": "endpoint", "ObjectName": "1003", "DeviceState": "Unavailable"},
]


def make_client(fake: FakeAmi, **kwargs: float) -> AmiClient:
    return AmiClient("127.0.0.1", fake.port, fake.username, fake.secret, **kwargs)


async def never_reply(_conn: FakeConnection, _action: dict[str, str]) -> None:
    return None


# -- 5: connect waits for the login result -----------------------------------------------------


async def test_connect_returns_logged_in(fake: FakeAmi) -> None:
    ami = make_client(fake)
    await ami.connect()
    try:
        # panoramisk's connect() returns before the Login reply has even been read
        assert ami.connected
        assert fake.logins_ok == 1
        login = fake.actions[0]
        assert login["Action"] == "Login"
        assert login["Events"] == "on"
    finally:
        await ami.close()
    assert not ami.connected


async def test_bad_secret_raises_auth_error_at_once(fake: FakeAmi) -> None:
    ami = AmiClient("127.0.0.1", fake.port, fake.username, "wrong")
    started = time.monotonic()
    with pytest.raises(AmiAuthError, match=r"^authentication failed$"):
        await ami.connect()
    # Asterisk closes after 1 s; we do not wait for that, and we do not retry
    assert time.monotonic() - started < 0.5
    assert not ami.connected
    await asyncio.sleep(0.1)
    assert fake.connections_total == 1


async def test_connection_refused_raises_oserror(free_port: int) -> None:
    ami = AmiClient("127.0.0.1", free_port, "u", "s")
    with pytest.raises(ConnectionRefusedError):
        await ami.connect()
    assert not ami.connected


# -- 1: timeouts --------------------------------------------------------------------------------


async def test_connect_times_out_when_login_gets_no_reply(fake: FakeAmi) -> None:
    fake.login_reply = "silent"
    ami = make_client(fake, connect_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(AmiTimeout):
        await ami.connect()
    assert time.monotonic() - started < 0.5
    await wait_until(lambda: not fake.connections)  # and the socket was closed


async def test_action_times_out_with_the_default(fake: FakeAmi) -> None:
    fake.handlers["slow"] = never_reply
    ami = make_client(fake, action_timeout=0.2)
    await ami.connect()
    try:
        started = time.monotonic()
        with pytest.raises(AmiTimeout, match="Slow"):
            await ami.action({"Action": "Slow"})
        assert 0.15 < time.monotonic() - started < 0.5
        assert ami.connected  # a timeout does not drop the connection
    finally:
        await ami.close()


async def test_per_call_timeout_overrides_the_default(client: AmiClient, fake: FakeAmi) -> None:
    fake.handlers["slow"] = never_reply
    started = time.monotonic()
    with pytest.raises(AmiTimeout):
        await client.list_action({"Action": "Slow"}, timeout=0.1)
    assert time.monotonic() - started < 0.4  # the client default is 2 s


async def test_late_list_reply_after_a_timeout_is_swallowed(
    client: AmiClient, fake: FakeAmi
) -> None:
    async def late_list(conn: FakeConnection, action: dict[str, str]) -> None:
        await asyncio.sleep(0.2)
        await conn.send_list(action, "EndpointList", ENDPOINTS)

    fake.handlers["pjsipshowendpoints"] = late_list
    events: list[dict[str, str]] = []
    client.add_event_listener(events.append)
    with pytest.raises(AmiTimeout):
        await client.list_action({"Action": "PJSIPShowEndpoints"}, timeout=0.05)
    await asyncio.sleep(0.3)
    assert events == []  # the late items are not mistaken for events
    assert client._protocol is not None
    assert client._protocol.responses == {}  # and the abandoned action is not kept forever
    await client.ping()


# -- 2: lists -----------------------------------------------------------------------------------


async def test_list_action_returns_the_items_only(client: AmiClient, fake: FakeAmi) -> None:
    fake.endpoints = ENDPOINTS
    items = await client.list_action({"Action": "PJSIPShowEndpoints"})
    assert [item["ObjectName"] for item in items] == ["1001", "1002", "1003"]
    assert all(item["Event"] == "EndpointList" for item in items)
    assert all(type(item) is dict for item in items)


@pytest.mark.parametrize(
    "message", ["No endpoints found", "No Contacts found", "No Auths found", "No AORs found"]
)
async def test_nothing_found_errors_mean_an_empty_list(
    client: AmiClient, fake: FakeAmi, message: str
) -> None:
    async def nothing(conn: FakeConnection, action: dict[str, str]) -> None:
        await conn.reply(action, {"Response": "Error", "Message": message})

    fake.handlers["pjsipshowthings"] = nothing
    assert await client.list_action({"Action": "PJSIPShowThings"}) == []


async def test_other_list_errors_raise_with_the_message_stripped(
    client: AmiClient, fake: FakeAmi
) -> None:
    async def unknown(conn: FakeConnection, action: dict[str, str]) -> None:
        message = "Unable to retrieve endpoint 9999\n"
        await conn.reply(action, {"Response": "Error", "Message": message})

    fake.handlers["pjsipshowendpoint"] = unknown
    with pytest.raises(AmiActionError) as caught:
        await client.list_action({"Action": "PJSIPShowEndpoint", "Endpoint": "9999"})
    assert caught.value.message == "Unable to retrieve endpoint 9999"


async def test_action_error_raises(client: AmiClient) -> None:
    with pytest.raises(AmiActionError) as caught:
        await client.action({"Action": "NoSuchThing"})
    assert caught.value.message.startswith("Invalid/unknown command")
    assert caught.value.reply["Response"] == "Error"


async def test_single_action_returns_a_plain_dict(client: AmiClient) -> None:
    reply = await client.action({"Action": "Ping"})
    assert type(reply) is dict
    assert reply["Ping"] == "Pong"
    assert "Content" not in reply and "content" not in reply


# -- 3: UTF-8 split across reads -------------------------------------------------------------


async def test_utf8_written_byte_by_byte_arrives_intact(client: AmiClient, fake: FakeAmi) -> None:
    events: list[dict[str, str]] = []
    client.add_event_listener(events.append)
    fake.chunk_size = 1
    fake.chunk_delay = 0.001  # separate TCP reads
    await fake.send_event({"Event": "UserEvent", "Callerid": '"Jörg Müller" <1001>'})
    await wait_until(lambda: bool(events))
    assert events[0]["Callerid"] == '"Jörg Müller" <1001>'


async def test_utf8_in_list_items_arrives_intact(client: AmiClient, fake: FakeAmi) -> None:
    fake.endpoints = [{"ObjectName": "1001", "Callerid": "Jörg Müller ÄÖÜ €"}]
    fake.chunk_size = 3  # splits several multi-byte characters
    fake.chunk_delay = 0.001
    items = await client.list_action({"Action": "PJSIPShowEndpoints"})
    assert items[0]["Callerid"] == "Jörg Müller ÄÖÜ €"


async def test_values_are_sent_as_utf8(client: AmiClient, fake: FakeAmi) -> None:
    with pytest.raises(AmiActionError):
        await client.action({"Action": "UserEvent", "Name": "Jörg"})
    assert fake.actions[-1]["Name"] == "Jörg"


# -- 4: unchecked values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        {"Action": "PJSIPShowEndpoint", "Endpoint": "1001\r\n\r\nAction: Originate"},
        {"Action": "PJSIPShowEndpoint", "Endpoint": "1001\nAction: Originate"},
        {"Action": "PJSIPShowEndpoint", "Endpoint": "1001\0Originate"},
        {"Action": "PJSIPShowEndpoint", "Endpoint\r\nAction": "Originate"},
        {"Action": "PJSIPShowEndpoint", "Endpoint": "Originate" * 200},
    ],
)
async def test_unsafe_values_never_reach_the_server(
    client: AmiClient, fake: FakeAmi, action: dict[str, str]
) -> None:
    sent_before = client.actions_sent
    with pytest.raises(AmiValueError):
        await client.action(action)
    with pytest.raises(AmiValueError):
        await client.list_action(action)
    await client.ping()  # the connection is fine and in sync
    assert fake.names() == ["Login", "Ping"]
    assert b"Originate" not in bytes(fake.raw)
    assert client.actions_sent == sent_before + 1


# -- 9: pending actions at a disconnect -----------------------------------------------------------


async def test_disconnect_mid_list_fails_the_pending_action_fast(
    client: AmiClient, fake: FakeAmi
) -> None:
    async def drop_mid_list(conn: FakeConnection, action: dict[str, str]) -> None:
        start = {"Response": "Success", "EventList": "start", "Message": "follows"}
        await conn.reply(action, start)
        item = {"Event": "EndpointList", "ActionID": action["ActionID"], "ObjectName": "1001"}
        await conn.send(item)
        conn.close()

    fake.handlers["pjsipshowendpoints"] = drop_mid_list
    started = time.monotonic()
    with pytest.raises(AmiDisconnected):
        await client.list_action({"Action": "PJSIPShowEndpoints"}, timeout=5)
    assert time.monotonic() - started < 0.5
    await asyncio.wait_for(client.wait_closed(), 1)
    assert not client.connected
    assert client.close_reason == "connection closed by peer"
    with pytest.raises(AmiDisconnected):
        await client.action({"Action": "Ping"})


async def test_close_fails_pending_actions(client: AmiClient, fake: FakeAmi) -> None:
    fake.handlers["slow"] = never_reply
    pending = asyncio.create_task(client.action({"Action": "Slow"}, timeout=5))
    await wait_until(lambda: "Slow" in fake.names())
    await client.close()
    with pytest.raises(AmiDisconnected):
        await pending
    await asyncio.wait_for(client.wait_closed(), 0.1)


async def test_abort_fails_pending_actions(client: AmiClient, fake: FakeAmi) -> None:
    fake.handlers["slow"] = never_reply
    pending = asyncio.create_task(client.action({"Action": "Slow"}, timeout=5))
    await wait_until(lambda: "Slow" in fake.names())
    client.abort("peer is dead")
    with pytest.raises(AmiDisconnected, match="peer is dead"):
        await pending
    assert client.close_reason == "peer is dead"
    await wait_until(lambda: not fake.connections)


async def test_shutdown_event_drops_the_connection(client: AmiClient, fake: FakeAmi) -> None:
    await fake.send_event({"Event": "Shutdown", "Shutdown": "Cleanly", "Restart": "True"})
    await asyncio.wait_for(client.wait_closed(), 1)
    assert client.close_reason == "Asterisk shut down"


# -- 8 (client part): Ping checks the Pong ----------------------------------------------------


async def test_ping_requires_pong(client: AmiClient, fake: FakeAmi) -> None:
    await client.ping()
    fake.ping_reply = "wrong"
    with pytest.raises(Exception, match="Pong"):
        await client.ping()
    fake.ping_reply = "none"
    with pytest.raises(AmiTimeout):
        await client.ping(timeout=0.1)


# -- events and bookkeeping ----------------------------------------------------------------------


async def test_events_reach_listeners_until_unsubscribed(client: AmiClient, fake: FakeAmi) -> None:
    first: list[dict[str, str]] = []
    second: list[dict[str, str]] = []
    unsubscribe = client.add_event_listener(first.append)
    client.add_event_listener(second.append)

    def broken(_event: dict[str, str]) -> None:
        raise RuntimeError("listener bug")

    client.add_event_listener(broken)  # must not stop the others
    await fake.send_event({"Event": "ContactStatus", "AOR": "1001", "ContactStatus": "Created"})
    await wait_until(lambda: len(second) == 1)
    unsubscribe()
    unsubscribe()  # harmless twice
    await fake.send_event({"Event": "PeerStatus", "Peer": "PJSIP/1001"})
    await wait_until(lambda: len(second) == 2)
    assert [e["Event"] for e in first] == ["ContactStatus"]
    assert second[0] == {"Event": "ContactStatus", "AOR": "1001", "ContactStatus": "Created"}


async def test_actions_sent_counts_every_action(client: AmiClient, fake: FakeAmi) -> None:
    fake.endpoints = ENDPOINTS
    assert client.actions_sent == 1  # Login
    await client.ping()
    await client.list_action({"Action": "PJSIPShowEndpoints"})
    assert client.actions_sent == 3


async def test_actions_before_connect_raise_disconnected(fake: FakeAmi) -> None:
    ami = make_client(fake)
    with pytest.raises(AmiDisconnected):
        await ami.action({"Action": "Ping"})
    await ami.wait_closed()  # never connected: resolves at once
    await ami.close()


async def test_client_can_connect_again_after_close(fake: FakeAmi) -> None:
    ami = make_client(fake)
    await ami.connect()
    await ami.close()
    await ami.connect()
    try:
        await ami.ping()
        assert fake.logins_ok == 2
    finally:
        await ami.close()
