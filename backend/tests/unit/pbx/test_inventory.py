"""Inventory against the fake AMI server: full syncs, drops mid-list, and live events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from ispbx.ami import AmiSession, AmiTarget
from ispbx.pbx.inventory import Inventory
from ispbx.pbx.state import status_of
from tests.unit.ami.fake_ami import FakeAmi, FakeConnection, wait_until


def endpoint_item(name: str, state: str = "Unavailable") -> dict[str, str]:
    return {
        "ObjectType": "endpoint",
        "ObjectName": name,
        "Transport": "transport-udp",
        "Aor": name,
        "Auths": name,
        "OutboundAuths": "",
        "Contacts": "",
        "DeviceState": state,
        "ActiveChannels": "",
    }


@dataclass
class Pbx:
    """What the fake Asterisk lists, with a count of each list action it answered."""

    fake: FakeAmi
    auths: list[dict[str, str]] = field(default_factory=list)
    aors: list[dict[str, str]] = field(default_factory=list)
    contacts: list[dict[str, str]] = field(default_factory=list)
    device_states: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fake.handlers.update(
            {
                "pjsipshowauths": self._lister("AuthList", lambda: self.auths, "No Auths found"),
                "pjsipshowaors": self._lister("AorList", lambda: self.aors, "No AORs found"),
                "pjsipshowcontacts": self._lister(
                    "ContactList", lambda: self.contacts, "No Contacts found"
                ),
                "devicestatelist": self._lister("DeviceStateChange", lambda: self.device_states),
            }
        )

    @staticmethod
    def _lister(
        event: str, items: Callable[[], list[dict[str, str]]], empty: str | None = None
    ) -> Callable[[FakeConnection, dict[str, str]], object]:
        async def handler(conn: FakeConnection, action: dict[str, str]) -> None:
            current = items()
            if not current and empty is not None:
                await conn.reply(action, {"Response": "Error", "Message": empty})
                return
            await conn.send_list(action, event, current)

        return handler

    def syncs(self) -> int:
        return self.fake.names().count("PJSIPShowEndpoints")


@dataclass
class Rig:
    fake: FakeAmi
    pbx: Pbx
    session: AmiSession
    inventory: Inventory
    changes: list[set[str] | None]


RigFactory = Callable[..., Rig]


@pytest.fixture
async def make_rig() -> AsyncIterator[RigFactory]:
    rigs: list[Rig] = []

    async def factory(
        names: tuple[str, ...] = ("101", "102"),
        *,
        ping_interval: float = 10.0,
        start: bool = True,
    ) -> Rig:
        fake = await FakeAmi().start()
        fake.endpoints = [endpoint_item(n) for n in names]
        pbx = Pbx(fake)
        session = AmiSession(
            AmiTarget(
                "127.0.0.1",
                fake.port,
                fake.username,
                fake.secret,
                ping_interval=ping_interval,
                silence_timeout=3 * ping_interval,
                backoff_initial=0.05,
                action_timeout=2.0,
            )
        )
        inventory = Inventory(session, prefetch=False)
        changes: list[set[str] | None] = []
        inventory.changes.add(changes.append)
        session.logins.add(inventory.on_login)  # as Pbx._wire connects them
        session.events.add(inventory.on_event)
        rig = Rig(fake, pbx, session, inventory, changes)
        rigs.append(rig)
        if start:
            inventory.start()
            session.start()
        return rig

    yield factory  # type: ignore[misc]
    for rig in rigs:
        await rig.session.stop()
        await rig.inventory.stop()
        await rig.fake.stop()


async def synced(rig: Rig, limit: float = 2.0) -> None:
    await wait_until(lambda: rig.inventory.synced and not rig.inventory._syncing, limit)


# -- 7: a connection dropped in the middle of a list ---------------------------------------------


async def test_drop_mid_list_fails_fast_and_a_full_resync_follows(make_rig: RigFactory) -> None:
    names = tuple(str(n) for n in range(100, 160))
    rig = await make_rig(names, start=False)
    dropped_at: list[float] = []

    async def drop_first_list(conn: FakeConnection, action: dict[str, str]) -> None:
        if dropped_at:
            await conn.send_list(action, "EndpointList", rig.fake.endpoints)
            return
        action_id = action["ActionID"]
        await conn.send(
            {"Response": "Success", "ActionID": action_id, "EventList": "start", "Message": "x"}
        )
        for item in rig.fake.endpoints[:20]:
            await conn.send({"Event": "EndpointList", "ActionID": action_id, **item})
        dropped_at.append(time.monotonic())
        conn.close()

    rig.fake.handlers["pjsipshowendpoints"] = drop_first_list
    rig.inventory.start()
    rig.session.start()
    await wait_until(lambda: rig.inventory.synced, 3)
    assert time.monotonic() - dropped_at[0] < 1.0  # no 30 s list timeout, no hang
    assert list(rig.inventory.state.endpoints) == list(names)  # the full list, not the 20
    assert rig.pbx.syncs() == 2
    assert rig.fake.logins_ok == 2
    assert rig.changes == [None]  # the torn list was never published


async def test_drop_mid_resync_keeps_the_last_full_state_until_the_next_one(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(("101", "102"))
    await synced(rig)
    rig.fake.endpoints = [endpoint_item(n) for n in ("101", "102", "103")]
    drops: list[int] = []

    async def drop_once(conn: FakeConnection, action: dict[str, str]) -> None:
        if not drops:
            drops.append(1)
            action_id = action["ActionID"]
            await conn.send(
                {"Response": "Success", "ActionID": action_id, "EventList": "start", "M": "x"}
            )
            conn.close()
            return
        await conn.send_list(action, "AorList", [])

    rig.fake.handlers["pjsipshowaors"] = drop_once
    rig.changes.clear()
    await rig.fake.send_event({"Event": "Reload", "Module": "res_pjsip.so", "Status": "0"})
    await wait_until(lambda: bool(drops), 1)
    await asyncio.sleep(0.01)
    # the half-taken snapshot (three endpoints, no AORs yet) never replaced the good one
    assert list(rig.inventory.state.endpoints) == ["101", "102"]
    await wait_until(lambda: "103" in rig.inventory.state.endpoints, 2)
    assert list(rig.inventory.state.endpoints) == ["101", "102", "103"]
    assert rig.changes == [None]


async def test_silent_peer_mid_list_is_dropped_by_the_keepalive(make_rig: RigFactory) -> None:
    """The peer stops talking in the middle of a list but keeps the socket open: the Ping gets no
    Pong, the session drops the connection at the silence timeout (3 ping intervals), the list
    fails and the next login resyncs (instead of waiting for the 30 s list timeout)."""
    rig = await make_rig(("101", "102"), ping_interval=0.2, start=False)
    stalled: list[float] = []

    async def stall_first_list(conn: FakeConnection, action: dict[str, str]) -> None:
        if stalled:
            await conn.send_list(action, "EndpointList", rig.fake.endpoints)
            return
        stalled.append(time.monotonic())
        await conn.send(
            {"Response": "Success", "ActionID": action["ActionID"], "EventList": "start"}
        )
        await asyncio.sleep(3600)  # no further reads on this connection: Pings go unanswered

    rig.fake.handlers["pjsipshowendpoints"] = stall_first_list
    rig.inventory.start()
    rig.session.start()
    await wait_until(lambda: rig.inventory.synced, 3)
    assert time.monotonic() - stalled[0] < 1.5
    assert list(rig.inventory.state.endpoints) == ["101", "102"]


# -- 8: events -------------------------------------------------------------------------------------


async def test_first_sync_takes_every_list(make_rig: RigFactory) -> None:
    rig = await make_rig(("101", "102"), start=False)
    rig.pbx.auths = [{"ObjectType": "auth", "ObjectName": "101", "Username": "101"}]
    rig.pbx.aors = [{"ObjectType": "aor", "ObjectName": "101", "MaxContacts": "1"}]
    rig.pbx.contacts = [
        {"Aor": "101", "Endpoint": "101", "Uri": "sip:101@127.0.0.1:5999", "Status": "Reachable"}
    ]
    rig.pbx.device_states = [{"Device": "PJSIP/102", "State": "INUSE"}]
    rig.inventory.start()
    rig.session.start()
    await synced(rig)
    state = rig.inventory.state
    assert list(state.endpoints) == ["101", "102"]
    assert list(state.auths) == ["101"]
    assert list(state.aors) == ["101"]
    contact = state.contacts["101"]["sip:101@127.0.0.1:5999"]
    assert contact["EndpointName"] == "101"
    assert contact["URI"] == "sip:101@127.0.0.1:5999"
    assert state.device_states == {"101": "Unavailable", "102": "In use"}
    assert rig.inventory.sync_seconds is not None
    assert rig.changes == [None]


async def test_device_state_change_sets_the_state_words_and_status(make_rig: RigFactory) -> None:
    rig = await make_rig(("101", "102"))
    await synced(rig)
    rig.changes.clear()
    assert status_of(rig.inventory.device_state("101")) == "offline"

    await rig.fake.send_event(
        {"Event": "DeviceStateChange", "Device": "PJSIP/101", "State": "NOT_INUSE"}
    )
    await wait_until(lambda: rig.changes == [{"101"}], 1)
    assert rig.inventory.device_state("101") == "Not in use"
    assert status_of(rig.inventory.device_state("101")) == "online"

    # the same state again, and devices that are not PJSIP endpoints, change nothing
    await rig.fake.send_event(
        {"Event": "DeviceStateChange", "Device": "PJSIP/101", "State": "NOT_INUSE"}
    )
    await rig.fake.send_event({"Event": "DeviceStateChange", "Device": "SIP/101", "State": "INUSE"})
    await rig.fake.send_event(
        {"Event": "DeviceStateChange", "Device": "PJSIP/102", "State": "RINGINUSE"}
    )
    await wait_until(lambda: len(rig.changes) == 2, 1)
    await asyncio.sleep(0.05)
    assert rig.changes == [{"101"}, {"102"}]
    assert rig.inventory.device_state("102") == "Ring+Inuse"
    assert "SIP/101" not in rig.inventory.state.device_states

    await rig.fake.send_event(
        {"Event": "DeviceStateChange", "Device": "PJSIP/101", "State": "UNAVAILABLE"}
    )
    await wait_until(lambda: rig.inventory.device_state("101") == "Unavailable", 1)
    assert status_of(rig.inventory.device_state("101")) == "offline"
    assert rig.changes[-1] == {"101"}


async def test_contact_status_created_updated_and_removed(make_rig: RigFactory) -> None:
    rig = await make_rig(("101", "102"))
    await synced(rig)
    rig.changes.clear()
    uri = "sip:101@127.0.0.1:5999"
    base = {"Event": "ContactStatus", "URI": uri, "AOR": "101", "EndpointName": "101"}

    await rig.fake.send_event({**base, "ContactStatus": "Created"})
    await wait_until(lambda: len(rig.changes) == 1, 1)
    assert rig.changes == [{"101"}]
    assert list(rig.inventory.contacts("101")) == [
        {"URI": uri, "EndpointName": "101", "AOR": "101", "Status": "Unknown"}
    ]

    await rig.fake.send_event({**base, "ContactStatus": "Reachable", "RoundtripUsec": "1234"})
    await wait_until(lambda: len(rig.changes) == 2, 1)
    (contact,) = rig.inventory.contacts("101")
    assert contact["Status"] == "Reachable"
    assert contact["RoundtripUsec"] == "1234"

    await rig.fake.send_event({**base, "ContactStatus": "Removed"})
    await wait_until(lambda: len(rig.changes) == 3, 1)
    assert rig.inventory.contacts("101") == []
    assert rig.changes == [{"101"}, {"101"}, {"101"}]
    assert rig.inventory.contacts("102") == []


async def test_events_during_a_sync_are_replayed_after_it(make_rig: RigFactory) -> None:
    rig = await make_rig(("101", "102"), start=False)
    uri = "sip:102@127.0.0.1:5998"

    async def auths_with_events_first(conn: FakeConnection, action: dict[str, str]) -> None:
        # the endpoint list (101 Unavailable) is already taken; these happen after it
        await conn.send({"Event": "DeviceStateChange", "Device": "PJSIP/101", "State": "NOT_INUSE"})
        await conn.send(
            {
                "Event": "ContactStatus",
                "URI": uri,
                "AOR": "102",
                "EndpointName": "102",
                "ContactStatus": "Created",
            }
        )
        await asyncio.sleep(0.05)  # still syncing when they arrive
        await conn.reply(action, {"Response": "Error", "Message": "No Auths found"})

    rig.fake.handlers["pjsipshowauths"] = auths_with_events_first
    rig.inventory.start()
    rig.session.start()
    await synced(rig)
    assert rig.inventory.device_state("101") == "Not in use"
    assert [c["URI"] for c in rig.inventory.contacts("102")] == [uri]
    assert rig.changes == [None]  # replayed into the sync's own change, not published half-way


async def test_reload_triggers_a_full_resync(make_rig: RigFactory) -> None:
    rig = await make_rig(("101",))
    await synced(rig)
    assert rig.pbx.syncs() == 1
    rig.changes.clear()
    rig.fake.endpoints = [endpoint_item("101"), endpoint_item("105")]
    await rig.fake.send_event({"Event": "Reload", "Module": "res_pjsip.so", "Status": "0"})
    await wait_until(lambda: "105" in rig.inventory.state.endpoints, 1)
    assert rig.pbx.syncs() == 2
    assert rig.changes == [None]

    rig.fake.endpoints = [endpoint_item("105")]
    await rig.fake.send_event({"Event": "Reload", "Module": "res_pjsip.so", "Status": "0"})
    await wait_until(lambda: "101" not in rig.inventory.state.endpoints, 1)
    assert list(rig.inventory.state.endpoints) == ["105"]


async def test_fully_booted_right_after_login_causes_no_second_sync(make_rig: RigFactory) -> None:
    rig = await make_rig(("101", "102"))
    await synced(rig)
    await asyncio.sleep(0.3)
    assert rig.pbx.syncs() == 1
    assert rig.changes == [None]


@pytest.mark.parametrize("delay", [0.0, 0.001, 0.01, 0.05])
async def test_fully_booted_sent_apart_from_the_login_reply_causes_no_second_sync(
    make_rig: RigFactory, delay: float
) -> None:
    """Asterisk writes FullyBooted separately from the login reply; wherever it lands relative to
    the login hook's sync, it must not cause a second sync."""
    rig = await make_rig(("101", "102"), start=False)

    async def login(conn: FakeConnection, action: dict[str, str]) -> None:
        conn.logged_in = True
        rig.fake.logins_ok += 1
        await conn.reply(action, {"Response": "Success", "Message": "Authentication accepted"})
        await asyncio.sleep(delay)
        conn.writer.write(
            b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
        )

    rig.fake.handlers["login"] = login
    rig.inventory.start()
    rig.session.start()
    await synced(rig)
    await asyncio.sleep(0.2)
    assert rig.pbx.syncs() == 1


async def test_fully_booted_after_the_login_sync_resyncs(make_rig: RigFactory) -> None:
    """A later FullyBooted means Asterisk (re)booted under a live connection: take a snapshot."""
    rig = await make_rig(("101",))
    await synced(rig)
    rig.fake.endpoints = [endpoint_item("101"), endpoint_item("102")]
    await rig.fake.send_event({"Event": "FullyBooted", "Status": "Fully Booted"})
    await wait_until(lambda: "102" in rig.inventory.state.endpoints, 1)
    assert rig.pbx.syncs() == 2


async def test_reconnect_resyncs_and_drops_what_vanished(make_rig: RigFactory) -> None:
    rig = await make_rig(("101", "102"))
    await synced(rig)
    rig.fake.endpoints = [endpoint_item("102", "Not in use")]
    rig.fake.drop_all()
    await wait_until(lambda: rig.pbx.syncs() == 2 and not rig.inventory._syncing, 2)
    await wait_until(lambda: list(rig.inventory.state.endpoints) == ["102"], 1)
    assert rig.inventory.device_state("102") == "Not in use"
    assert rig.changes == [None, None]


async def test_a_failed_sync_is_retried_until_it_succeeds(make_rig: RigFactory) -> None:
    """Right after a restart Asterisk may answer a list with an error (modules still loading):
    the sync is retried instead of leaving the inventory unsynced."""
    rig = await make_rig(("101", "102"), start=False)
    failures: list[int] = []
    lister = rig.fake.handlers["devicestatelist"]

    async def fail_twice(conn: FakeConnection, action: dict[str, str]) -> None:
        if len(failures) < 2:
            failures.append(1)
            await conn.reply(action, {"Response": "Error", "Message": "Invalid/unknown command"})
            return
        await lister(conn, action)  # type: ignore[operator]

    rig.fake.handlers["devicestatelist"] = fail_twice
    rig.inventory.start()
    rig.session.start()
    await wait_until(lambda: rig.inventory.synced, 5)
    assert len(failures) == 2
    assert list(rig.inventory.state.endpoints) == ["101", "102"]


async def test_reloads_of_other_modules_cause_no_resync(make_rig: RigFactory) -> None:
    rig = await make_rig(("101",))
    await synced(rig)
    await rig.fake.send_event({"Event": "Reload", "Module": "res_musiconhold.so", "Status": "0"})
    await rig.fake.send_event({"Event": "Reload", "Module": "All", "Status": "0"})
    await wait_until(lambda: rig.pbx.syncs() == 2 and not rig.inventory._syncing, 2)
    await asyncio.sleep(0.2)
    assert rig.pbx.syncs() == 2  # only "All" resynced


async def test_contact_updated_keeps_the_known_status(make_rig: RigFactory) -> None:
    rig = await make_rig(("101",))
    await synced(rig)
    event = {"Event": "ContactStatus", "URI": "sip:101@127.0.0.1:5070", "AOR": "101",
             "EndpointName": "101"}  # fmt: skip
    await rig.fake.send_event({**event, "ContactStatus": "Created"})
    await rig.fake.send_event({**event, "ContactStatus": "Reachable"})
    await rig.fake.send_event({**event, "ContactStatus": "Updated"})
    await wait_until(lambda: rig.inventory.contacts("101"), 1)
    await asyncio.sleep(0.1)
    assert rig.inventory.contacts("101")[0]["Status"] == "Reachable"


async def test_the_query_api_answers_from_the_snapshot(make_rig: RigFactory) -> None:
    rig = await make_rig(("101", "102"), start=False)
    rig.pbx.aors = [{"ObjectType": "aor", "ObjectName": "101", "MaxContacts": "2"}]
    rig.pbx.contacts = [
        {"Aor": "101", "Endpoint": "101", "Uri": "sip:101@127.0.0.1:5999", "Status": "Reachable"}
    ]
    rig.pbx.device_states = [{"Device": "PJSIP/101", "State": "RINGING"}]
    inventory = rig.inventory
    assert not inventory.synced
    assert inventory.endpoint_names() == []
    inventory.start()
    rig.session.start()
    await synced(rig)
    assert inventory.synced
    assert inventory.endpoint_names() == ["101", "102"]
    assert inventory.endpoint_count() == 2
    assert inventory.has("101") and not inventory.has("999")
    listing = inventory.listing("101")
    assert listing is not None and listing["Transport"] == "transport-udp"
    assert inventory.listing("999") is None
    aor = inventory.listed_aor("101")
    assert aor is not None and (aor["ObjectName"], aor["MaxContacts"]) == ("101", "2")
    assert inventory.listed_aor("102") is None  # its AOR is not listed
    assert [c["URI"] for c in inventory.contacts("101")] == ["sip:101@127.0.0.1:5999"]
    assert inventory.contacts("102") == []
    assert inventory.device_state("101") == "Ringing"
    assert inventory.device_state("999") == "Unknown"
    assert inventory.detail("101") is None  # prefetch is off in this rig


async def test_a_reload_still_in_progress_causes_no_resync(make_rig: RigFactory) -> None:
    """Asterisk sends Reload with Status 4 when a reload is asked for during another one."""
    rig = await make_rig(("101",))
    await synced(rig)
    await rig.fake.send_event({"Event": "Reload", "Module": "res_pjsip.so", "Status": "4"})
    await asyncio.sleep(0.2)
    assert rig.pbx.syncs() == 1
    await rig.fake.send_event({"Event": "Reload", "Module": "res_pjsip.so", "Status": "0"})
    await wait_until(lambda: rig.pbx.syncs() == 2, 1)
