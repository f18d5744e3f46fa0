"""AmiStats: counted on the session, so a reconnect (a new AmiClient) keeps the counts."""

from __future__ import annotations

from ispbx.ami import AmiClient, AmiSession, AmiTarget
from tests.unit.ami.fake_ami import FakeAmi, wait_until


async def test_actions_events_and_reconnects_survive_a_new_connection(fake: FakeAmi) -> None:
    session = AmiSession(
        AmiTarget("127.0.0.1", fake.port, fake.username, fake.secret, backoff_initial=0.05)
    )
    session.start()
    try:
        await wait_until(lambda: session.client is not None)
        await session.action({"Action": "Ping"})
        await fake.send_event({"Event": "UserEvent", "UserEvent": "one"})
        await wait_until(lambda: session.stats.events == 2)  # FullyBooted + the UserEvent
        assert session.stats.actions == {"Login": 1, "Ping": 1}
        assert session.stats.reconnects == 0

        fake.drop_all()
        await wait_until(lambda: session.stats.connects == 2)
        await wait_until(lambda: session.client is not None)
        await session.action({"Action": "Ping"})
        await wait_until(lambda: session.stats.events == 3)
        assert session.stats.actions == {"Login": 2, "Ping": 2}
        assert session.stats.reconnects == 1
    finally:
        await session.stop()


async def test_a_client_reports_each_action_it_writes(fake: FakeAmi) -> None:
    names: list[str] = []
    client = AmiClient("127.0.0.1", fake.port, fake.username, fake.secret, on_action=names.append)
    await client.connect()
    try:
        await client.ping()
        assert names == ["Login", "Ping"]
        assert client.actions_sent == 2
    finally:
        await client.close()
