"""The whole app (lifespan, routes, /metrics) on a fake Asterisk, for the metrics' unit tests.

:class:`FakeAsterisk` answers the five bulk lists and PJSIPShowEndpoint from its own tables, and
sends the events a real Asterisk would when a phone registers, is qualified or changes state, so
every metric family can be checked after a known sequence of events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from ispbx.app import create_app
from ispbx.pbx.pbx import Pbx
from ispbx.settings import load_settings
from tests.unit.ami.fake_ami import FakeAmi, FakeConnection, wait_until

ADMIN = "admin-metrics-test-0001"  # test credentials
VIEWER = "viewer-metrics-test-0001"
METRICS = "metrics-scrape-test-0001"
TOKENS = f"admin:{ADMIN},viewer:{VIEWER},metrics:{METRICS}"
DEVICE_TOKENS = {"Not in use": "NOT_INUSE", "Unavailable": "UNAVAILABLE", "In use": "INUSE"}
Handler = Callable[[FakeConnection, dict[str, str]], Awaitable[None]]


def pjsip_conf(names: list[str], extra: str = "") -> str:
    sections = "".join(
        f"[{n}]\ntype = endpoint\nauth = {n}\naors = {n}\n"
        f"[{n}]\ntype = auth\nusername = {n}\npassword = {n}pw\n"
        f"[{n}]\ntype = aor\nmax_contacts = 1\n"
        for n in names
    )
    return "[transport-udp]\ntype = transport\nprotocol = udp\nbind = 127.0.0.1:5060\n" + (
        sections + extra
    )


@dataclass
class FakeAsterisk:
    fake: FakeAmi
    states: dict[str, str] = field(default_factory=dict)  # endpoint -> device state words
    outbound: dict[str, str] = field(default_factory=dict)  # endpoint -> outbound auths
    contacts: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fake.handlers.update(
            {
                "pjsipshowendpoints": self._endpoints,
                "pjsipshowauths": self._lister("AuthList", self._auths),
                "pjsipshowaors": self._lister("AorList", self._aors),
                "pjsipshowcontacts": self._lister("ContactList", self._contact_list),
                "devicestatelist": self._lister("DeviceStateChange", self._device_states),
                "pjsipshowendpoint": self._detail,
            }
        )

    # -- what the tests do ---------------------------------------------------------------------

    def add(self, name: str, state: str = "Unavailable", outbound: str = "") -> None:
        self.states[name] = state
        self.outbound[name] = outbound

    def remove(self, name: str) -> None:
        del self.states[name]
        self.contacts.pop(name, None)

    async def register(self, name: str, port: int, rtt_usec: int = 0) -> str:
        """A phone registers, as Asterisk 22 tells it: the endpoint becomes Not in use and the
        contact NonQualified (``rtt_usec``: what a later detail fetch shows, as if qualified)."""
        uri = f"sip:{name}@127.0.0.1:{port}"
        status = "Reachable" if rtt_usec else "NonQualified"
        self.contacts.setdefault(name, {})[uri] = self._contact(name, uri, status, rtt_usec)
        await self.device_state(name, "Not in use")
        await self._contact_event(name, uri, "NonQualified", 0)
        return uri

    async def qualify(self, name: str, uri: str, rtt_usec: int | None) -> None:
        """A qualify result: Reachable with its round trip, or Unreachable (None)."""
        status = "Reachable" if rtt_usec is not None else "Unreachable"
        self.contacts[name][uri] = self._contact(name, uri, status, rtt_usec or 0)
        await self._contact_event(name, uri, status, rtt_usec or 0)

    async def unregister(self, name: str, uri: str) -> None:
        del self.contacts[name][uri]
        await self._contact_event(name, uri, "Removed", 0)
        await self.device_state(name, "Unavailable")

    async def device_state(self, name: str, state: str) -> None:
        self.states[name] = state
        await self.fake.send_event(
            {"Event": "DeviceStateChange", "Device": f"PJSIP/{name}", "State": DEVICE_TOKENS[state]}
        )

    async def reload(self) -> None:
        await self.fake.send_event({"Event": "Reload", "Module": "res_pjsip.so", "Status": "0"})

    # -- AMI -----------------------------------------------------------------------------------

    @staticmethod
    def _contact(name: str, uri: str, status: str, rtt_usec: int) -> dict[str, str]:
        return {
            "AOR": name,
            "URI": uri,
            "Status": status,
            "RoundtripUsec": str(rtt_usec) if rtt_usec else "N/A",
            "EndpointName": name,
            "UserAgent": "ISPBX-test-phone",
        }

    async def _contact_event(self, name: str, uri: str, status: str, rtt_usec: int) -> None:
        await self.fake.send_event(
            {
                "Event": "ContactStatus",
                "URI": uri,
                "ContactStatus": status,
                "AOR": name,
                "EndpointName": name,
                "RoundtripUsec": str(rtt_usec),
            }
        )

    def _listing(self, name: str) -> dict[str, str]:
        return {
            "ObjectType": "endpoint",
            "ObjectName": name,
            "Transport": "transport-udp",
            "Aor": name,
            "Auths": name,
            "OutboundAuths": self.outbound.get(name, ""),
            "DeviceState": self.states[name],
        }

    async def _endpoints(self, conn: FakeConnection, action: dict[str, str]) -> None:
        if not self.states:
            await conn.reply(action, {"Response": "Error", "Message": "No endpoints found"})
            return
        await conn.send_list(action, "EndpointList", [self._listing(n) for n in self.states])

    def _auths(self) -> list[dict[str, str]]:
        return [{"ObjectType": "auth", "ObjectName": n, "Username": n} for n in self.states]

    def _aors(self) -> list[dict[str, str]]:
        return [{"ObjectType": "aor", "ObjectName": n, "MaxContacts": "1"} for n in self.states]

    def _contact_list(self) -> list[dict[str, str]]:
        return [
            {
                "ObjectType": "contact",
                "Uri": c["URI"],
                "Endpoint": c["EndpointName"],
                "Aor": c["AOR"],
                "Status": c["Status"],
                "RoundtripUsec": c["RoundtripUsec"],
            }
            for contacts in self.contacts.values()
            for c in contacts.values()
        ]

    def _device_states(self) -> list[dict[str, str]]:
        return [
            {"Device": f"PJSIP/{n}", "State": DEVICE_TOKENS.get(s, "UNKNOWN")}
            for n, s in self.states.items()
        ]

    @staticmethod
    def _lister(event: str, items: Callable[[], list[dict[str, str]]]) -> Handler:
        async def handler(conn: FakeConnection, action: dict[str, str]) -> None:
            await conn.send_list(action, event, items())

        return handler

    async def _detail(self, conn: FakeConnection, action: dict[str, str]) -> None:
        name = action["Endpoint"]
        if name not in self.states:
            await conn.reply(action, {"Response": "Error", "Message": "Unable to retrieve"})
            return
        endpoint = {
            "ObjectType": "endpoint",
            "ObjectName": name,
            "Context": "from-internal",
            "Auth": name,
            "Aors": name,
            "OutboundAuth": self.outbound.get(name, ""),
            "DeviceState": self.states[name],
        }
        items = [("EndpointDetail", endpoint), ("AorDetail", {"ObjectName": name})]
        items += [("ContactStatusDetail", c) for c in self.contacts.get(name, {}).values()]
        action_id = action["ActionID"]
        await conn.send({"Response": "Success", "ActionID": action_id, "EventList": "start"})
        for event, item in items:
            await conn.send({"Event": event, "ActionID": action_id, **item})
        await conn.send(
            {"Event": "EndpointDetailComplete", "ActionID": action_id, "EventList": "Complete"}
        )


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a /metrics body, parsed by prometheus_client's own parser."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset({"pbx": "default", **labels}.items())))


def named(samples: Samples, name: str) -> list[dict[str, str]]:
    """The label sets of every sample called ``name``."""
    return [dict(labels) for sample_name, labels in samples if sample_name == name]


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    asterisk: FakeAsterisk
    conf: Path

    @property
    def pbx(self) -> Pbx:
        pbx: Pbx = self.app.state.services.pbx
        return pbx

    async def scrape(self, token: str = METRICS) -> Samples:
        response = await self.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return parse(response.text)

    async def recorded(self, endpoint: str, kind: str, limit: float = 10.0) -> None:
        """Until the history has recorded a ``kind`` event of ``endpoint`` (so its change
        detector, and the flap detector behind it, have seen the change)."""
        auth = {"Authorization": f"Bearer {ADMIN}"}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            reply = await self.client.get(
                f"/endpoints/{endpoint}/history", params={"kind": kind}, headers=auth
            )
            if reply.status_code == 200 and reply.json()["events"]:
                return
            if loop.time() > deadline:
                raise AssertionError(f"no {kind} event of {endpoint} in the history")
            await asyncio.sleep(0.05)

    async def until(self, check: Callable[[Samples], bool], limit: float = 5.0) -> Samples:
        """Scrape until ``check`` holds (the events sent so far have been applied)."""
        found: list[Samples] = []

        async def poll() -> bool:
            found[:] = [await self.scrape()]
            return check(found[0])

        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while not await poll():
            if loop.time() > deadline:
                raise AssertionError(f"metrics did not reach the expected state: {found[0]}")
            await asyncio.sleep(0.02)
        return found[0]


async def running(
    tmp_path: Path, asterisk: FakeAsterisk, conf_text: str, **env: str
) -> AsyncIterator[Service]:
    """The app with its lifespan running, wired to ``asterisk``; ``yield from`` it."""
    conf = tmp_path / "pjsip.conf"
    conf.write_text(conf_text)
    fake = asterisk.fake
    settings = load_settings(
        {
            "ISPBX_AMI_PORT": str(fake.port),
            "ISPBX_AMI_USERNAME": fake.username,
            "ISPBX_AMI_SECRET": fake.secret,
            "ISPBX_PJSIP_CONF": str(conf),
            "ISPBX_API_TOKENS": TOKENS,
            "ISPBX_TOKEN_FILE": str(tmp_path / "token"),
            "ISPBX_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ispbx.db'}",
            **env,
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            service = Service(app, client, asterisk, conf)
            await wait_until(lambda: service.pbx.inventory.synced, 5)
            yield service
