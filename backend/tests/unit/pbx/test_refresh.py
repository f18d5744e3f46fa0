"""Targeted refresh against the fake AMI server: after a pjsip Reload only the endpoints that
changed are fetched again (PJSIPShowEndpoint); a login or FullyBooted prefetches every one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass, field

import pytest

from ispbx.ami import AmiSession, AmiTarget
from ispbx.pbx.detail import DetailFields
from ispbx.pbx.inventory import Inventory
from ispbx.pbx.state import CONTACT_LIST_SAME, Snapshot, contact_from_list
from ispbx.pbx.sync import Fingerprints, endpoints_to_refresh, keep_known_contacts
from tests.unit.ami.fake_ami import FakeAmi, FakeConnection, wait_until

RELOAD = {"Event": "Reload", "Module": "res_pjsip.so", "Status": "0"}


def listing(name: str, transport: str = "transport-udp") -> dict[str, str]:
    return {
        "ObjectType": "endpoint",
        "ObjectName": name,
        "Transport": transport,
        "Aor": name,
        "Auths": name,
        "OutboundAuths": "",
        "DeviceState": "Unavailable",
    }


@dataclass
class Asterisk:
    """What the fake Asterisk holds: endpoints with a context each, auths, AORs."""

    fake: FakeAmi
    contexts: dict[str, str] = field(default_factory=dict)
    auths: dict[str, dict[str, str]] = field(default_factory=dict)
    transports: dict[str, str] = field(default_factory=dict)
    # endpoint -> (its ContactList item, its ContactStatusDetail), as Asterisk 22 spells them
    contacts: dict[str, tuple[dict[str, str], dict[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fake.handlers.update(
            {
                "pjsipshowendpoints": self._endpoints,
                "pjsipshowauths": self._lister("AuthList", lambda: list(self.auths.values())),
                "pjsipshowaors": self._lister("AorList", self._aors),
                "pjsipshowcontacts": self._lister(
                    "ContactList", lambda: [listed for listed, _ in self.contacts.values()]
                ),
                "devicestatelist": self._lister("DeviceStateChange", list),
                "pjsipshowendpoint": self._detail,
            }
        )

    def add(self, name: str, context: str = "from-internal") -> None:
        self.contexts[name] = context
        self.auths[name] = {"ObjectType": "auth", "ObjectName": name, "Username": name}

    def remove(self, name: str) -> None:
        del self.contexts[name]
        del self.auths[name]

    def _aors(self) -> list[dict[str, str]]:
        return [{"ObjectType": "aor", "ObjectName": n, "MaxContacts": "1"} for n in self.contexts]

    async def _endpoints(self, conn: FakeConnection, action: dict[str, str]) -> None:
        items = [listing(n, self.transports.get(n, "transport-udp")) for n in self.contexts]
        await conn.send_list(action, "EndpointList", items)

    @staticmethod
    def _lister(event: str, items: object) -> object:
        async def handler(conn: FakeConnection, action: dict[str, str]) -> None:
            await conn.send_list(action, event, items())  # type: ignore[operator]

        return handler

    async def _detail(self, conn: FakeConnection, action: dict[str, str]) -> None:
        name = action["Endpoint"]
        if name not in self.contexts:
            await conn.reply(action, {"Response": "Error", "Message": "Unable to retrieve"})
            return
        endpoint = {
            "ObjectType": "endpoint",
            "ObjectName": name,
            "Context": self.contexts[name],
            "Auth": name,
            "Aors": name,
            "OutboundAuth": "",
        }
        aor = {"ObjectType": "aor", "ObjectName": name, "MaxContacts": "1"}
        items = [("EndpointDetail", endpoint), ("AuthDetail", self.auths[name])]
        items.append(("AorDetail", aor))
        if name in self.contacts:
            items.append(("ContactStatusDetail", self.contacts[name][1]))
        action_id = action["ActionID"]
        await conn.send({"Response": "Success", "ActionID": action_id, "EventList": "start"})
        for event, item in items:
            await conn.send({"Event": event, "ActionID": action_id, **item})
        await conn.send(
            {"Event": "EndpointDetailComplete", "ActionID": action_id, "EventList": "Complete"}
        )

    def detail_fetches(self) -> list[str]:
        return [a["Endpoint"] for a in self.fake.actions if a.get("Action") == "PJSIPShowEndpoint"]


@dataclass
class Rig:
    asterisk: Asterisk
    session: AmiSession
    inventory: Inventory
    prints: dict[str, Hashable]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async for started in rig_on(Asterisk(await FakeAmi().start())):
        yield started


async def rig_on(asterisk: Asterisk, fields: DetailFields | None = None) -> AsyncIterator[Rig]:
    fake = asterisk.fake
    for name in ("101", "102", "103"):
        asterisk.add(name)
    session = AmiSession(
        AmiTarget("127.0.0.1", fake.port, fake.username, fake.secret, backoff_initial=0.05)
    )
    prints: dict[str, Hashable] = dict.fromkeys(asterisk.contexts, ("ctx", "from-internal"))

    async def fingerprints() -> Fingerprints:
        return dict(prints)

    inventory = Inventory(session, fingerprints=fingerprints, fields=fields)
    session.logins.add(inventory.on_login)
    session.events.add(inventory.on_event)
    inventory.start()
    session.start()
    await wait_until(lambda: inventory.prefetch_seconds is not None, 3)
    yield Rig(asterisk, session, inventory, prints)
    await session.stop()
    await inventory.stop()
    await fake.stop()


async def reload_and_settle(rig: Rig) -> list[str]:
    """Send a pjsip Reload; the PJSIPShowEndpoint actions it caused."""
    before = len(rig.asterisk.detail_fetches())
    syncs = rig.asterisk.fake.names().count("PJSIPShowEndpoints")
    await rig.asterisk.fake.send_event(RELOAD)
    await wait_until(
        lambda: (
            rig.asterisk.fake.names().count("PJSIPShowEndpoints") == syncs + 1
            and rig.asterisk.fake.names()[-1] != "PJSIPShowEndpoints"
        ),
        2,
    )
    await asyncio.sleep(0.2)  # let the detail worker run
    return rig.asterisk.detail_fetches()[before:]


async def test_login_prefetches_every_endpoint_once(rig: Rig) -> None:
    assert sorted(rig.asterisk.detail_fetches()) == ["101", "102", "103"]
    detail = rig.inventory.detail("102")
    assert detail is not None
    assert detail.endpoint["Context"] == "from-internal"


async def test_a_reload_that_changed_nothing_fetches_no_detail(rig: Rig) -> None:
    assert await reload_and_settle(rig) == []


async def test_only_the_endpoint_whose_configuration_changed_is_fetched_again(rig: Rig) -> None:
    rig.asterisk.contexts["102"] = "customers"
    rig.prints["102"] = ("ctx", "customers")
    assert await reload_and_settle(rig) == ["102"]
    detail = rig.inventory.detail("102")
    assert detail is not None
    assert detail.endpoint["Context"] == "customers"
    unchanged = rig.inventory.detail("101")
    assert unchanged is not None
    assert unchanged.endpoint["Context"] == "from-internal"


async def test_an_added_endpoint_appears_with_its_details(rig: Rig) -> None:
    rig.asterisk.add("104", "new")
    rig.prints["104"] = ("ctx", "new")
    assert await reload_and_settle(rig) == ["104"]
    assert rig.inventory.has("104")
    detail = rig.inventory.detail("104")
    assert detail is not None
    assert detail.endpoint["Context"] == "new"


async def test_a_removed_endpoint_disappears_with_its_details(rig: Rig) -> None:
    rig.asterisk.remove("103")
    del rig.prints["103"]
    assert await reload_and_settle(rig) == []
    assert not rig.inventory.has("103")
    assert rig.inventory.detail("103") is None
    assert rig.inventory.endpoint_names() == ["101", "102"]


async def test_a_changed_auth_or_listing_refetches_the_endpoints_using_it(rig: Rig) -> None:
    rig.asterisk.auths["101"] = {**rig.asterisk.auths["101"], "Username": "renamed"}
    rig.asterisk.transports["103"] = "transport-tcp"
    assert sorted(await reload_and_settle(rig)) == ["101", "103"]


async def test_fully_booted_after_the_login_prefetches_everything_again(rig: Rig) -> None:
    before = len(rig.asterisk.detail_fetches())
    await rig.asterisk.fake.send_event({"Event": "FullyBooted", "Status": "Fully Booted"})
    await wait_until(lambda: len(rig.asterisk.detail_fetches()) == before + 3, 2)
    assert sorted(rig.asterisk.detail_fetches()[before:]) == ["101", "102", "103"]


async def test_writes_in_a_burst_share_one_resync_after_the_last_of_them(rig: Rig) -> None:
    rig.inventory.resync_after_write = 0.3
    lists = rig.asterisk.fake.names().count("PJSIPShowEndpoints")
    for _ in range(3):  # three writes, each with its own reload
        async with rig.inventory.resyncs_held():
            await rig.asterisk.fake.send_event(RELOAD)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # the next write comes before the pause is over
    assert rig.asterisk.fake.names().count("PJSIPShowEndpoints") == lists  # held, then deferred
    await wait_until(lambda: rig.asterisk.fake.names().count("PJSIPShowEndpoints") == lists + 1, 2)
    await asyncio.sleep(0.5)
    assert rig.asterisk.fake.names().count("PJSIPShowEndpoints") == lists + 1  # only one


async def test_a_reload_event_just_after_the_write_waits_for_the_same_resync(rig: Rig) -> None:
    rig.inventory.resync_after_write = 0.3
    lists = rig.asterisk.fake.names().count("PJSIPShowEndpoints")
    async with rig.inventory.resyncs_held():
        pass  # the write's reload answered, its event is still on the way
    await rig.asterisk.fake.send_event(RELOAD)
    await asyncio.sleep(0.1)
    assert rig.asterisk.fake.names().count("PJSIPShowEndpoints") == lists
    await wait_until(lambda: rig.asterisk.fake.names().count("PJSIPShowEndpoints") == lists + 1, 2)


async def test_a_reload_outside_a_write_resyncs_at_once(rig: Rig) -> None:
    rig.inventory.resync_after_write = 30.0
    lists = rig.asterisk.fake.names().count("PJSIPShowEndpoints")
    await rig.asterisk.fake.send_event(RELOAD)
    await wait_until(lambda: rig.asterisk.fake.names().count("PJSIPShowEndpoints") == lists + 1, 1)


def test_refresh_plan_ignores_device_states_and_contacts() -> None:
    old = Snapshot(endpoints={"101": listing("101")}, aors={"101": {"ObjectName": "101"}})
    volatile = {"DeviceState": "In use", "Contacts": "101/sip:x", "ActiveChannels": "1"}
    busy = {**listing("101"), **volatile}
    new = Snapshot(
        endpoints={"101": busy},
        aors={"101": {"ObjectName": "101", "Contacts": "sip:x", "TotalContacts": "1"}},
    )
    assert endpoints_to_refresh(old, new, {"101": 1}, {"101": 1}) == set()
    assert endpoints_to_refresh(old, new, {"101": 1}, {"101": 2}) == {"101"}


# As the lab's Asterisk 22.10 answers for a registered phone (ContactList lacks AOR, spells
# RegExpire and ViaAddress differently, and writes QualifyTimeout and booleans its own way).
CONTACT_LIST_101 = {
    "ObjectType": "contact",
    "ObjectName": "101;@463ece333069106d3b716f612d6365c8",
    "ViaAddr": "127.0.0.1",
    "QualifyTimeout": "3.000000",
    "Qualify2xxOnly": "false",
    "CallID": "bf2fcfa439b96542bc8542c5@127.0.0.1",
    "RegServer": "",
    "PruneOnBoot": "no",
    "Path": "",
    "EndpointName": "101",
    "ViaPort": "39006",
    "AuthenticateQualify": "no",
    "URI": "sip:101@127.0.0.1:39006",
    "QualifyFrequency": "0",
    "UserAgent": "ISPBX-Manager-lab-phone/0.1",
    "ExpirationTime": "1796168942",
    "OutboundProxy": "",
    "Status": "NonQualified",
    "RoundtripUsec": "N/A",
}
CONTACT_DETAIL_101 = {
    "AOR": "101",
    "URI": "sip:101@127.0.0.1:39006",
    "UserAgent": "ISPBX-Manager-lab-phone/0.1",
    "RegExpire": "1796168942",
    "ViaAddress": "127.0.0.1:39006",
    "CallID": "bf2fcfa439b96542bc8542c5@127.0.0.1",
    "Status": "NonQualified",
    "RoundtripUsec": "N/A",
    "EndpointName": "101",
    "ID": "101;@463ece333069106d3b716f612d6365c8",
    "AuthenticateQualify": "0",
    "OutboundProxy": "",
    "Path": "",
    "QualifyFrequency": "0",
    "QualifyTimeout": "3.000",
    "Qualify2xxOnly": "0",
}


@pytest.fixture
async def contact_rig() -> AsyncIterator[Rig]:
    asterisk = Asterisk(await FakeAmi().start())
    asterisk.contacts["101"] = (CONTACT_LIST_101, CONTACT_DETAIL_101)
    # every field ContactStatusDetail has selected, those the list spells differently included
    fields = DetailFields({"ContactStatusDetail": tuple(CONTACT_DETAIL_101)})
    async for started in rig_on(asterisk, fields):
        yield started


def test_a_listed_contact_reads_like_its_detail() -> None:
    listed = contact_from_list(CONTACT_LIST_101)
    same = {k: v for k, v in CONTACT_DETAIL_101.items() if k in CONTACT_LIST_SAME}
    assert {k: listed[k] for k in same} == same


@pytest.mark.parametrize("event", [RELOAD, {"Event": "FullyBooted", "Status": "Fully Booted"}])
async def test_a_resync_leaves_an_unchanged_contact_unchanged(
    contact_rig: Rig, event: dict[str, str]
) -> None:
    """Today a resync replaced the contact by the list's (no RegExpire, other spellings), then the
    prefetch put the detail's back: two changes of a contact that never changed."""
    rig = contact_rig
    assert rig.inventory.contacts("101") == [CONTACT_DETAIL_101]
    changes: list[set[str] | None] = []
    rig.inventory.changes.add(changes.append)
    syncs = rig.asterisk.fake.names().count("PJSIPShowEndpoints")
    await rig.asterisk.fake.send_event(event)
    await wait_until(lambda: rig.asterisk.fake.names().count("PJSIPShowEndpoints") > syncs, 2)
    await wait_until(lambda: not rig.inventory._syncing, 2)
    assert rig.inventory.contacts("101") == [CONTACT_DETAIL_101]
    await asyncio.sleep(0.3)  # the detail worker re-fetches what it was asked to
    assert rig.inventory.contacts("101") == [CONTACT_DETAIL_101]
    assert {"101"} not in changes, changes


def test_a_re_registered_contact_takes_the_lists_new_values() -> None:
    old = Snapshot(contacts={"101": {CONTACT_DETAIL_101["URI"]: dict(CONTACT_DETAIL_101)}})
    listed = contact_from_list({**CONTACT_LIST_101, "ExpirationTime": "1796169999"})
    new = Snapshot(contacts={"101": {listed["URI"]: listed}})
    keep_known_contacts(old, new)
    contact = new.contacts["101"][listed["URI"]]
    assert contact["RegExpire"] == "1796169999"  # the list's, fresher
    assert contact["QualifyTimeout"] == "3.000"  # the detail's spelling, kept
    assert contact["AOR"] == "101"
