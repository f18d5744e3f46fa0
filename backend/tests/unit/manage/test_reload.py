"""Reloads over AMI: "in progress" is retried, callers share reloads, failures say why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ispbx.ami import AmiSession, AmiTarget
from ispbx.manage import reload as reload_module
from ispbx.manage.reload import Reloader, ReloadError
from tests.unit.ami.fake_ami import FakeAmi, FakeConnection, wait_until


@pytest.fixture
async def rig() -> AsyncIterator[tuple[FakeAmi, Reloader, list[str]]]:
    fake = await FakeAmi().start()
    answers: list[str] = []  # what each Reload gets: "ok", "busy", "error"

    async def reload(conn: FakeConnection, action: dict[str, str]) -> None:
        answer = answers.pop(0) if answers else "ok"
        await asyncio.sleep(0.05)
        if answer == "ok":
            await conn.reply(action, {"Response": "Success", "Message": "Module Reloaded"})
        elif answer == "busy":
            await conn.reply(action, {"Response": "Error", "Message": "A reload is in progress"})
        else:
            await conn.reply(action, {"Response": "Error", "Message": "No such module"})

    fake.handlers["reload"] = reload
    session = AmiSession(AmiTarget("127.0.0.1", fake.port, fake.username, fake.secret))
    session.start()
    await wait_until(lambda: session.client is not None, 2)
    yield fake, Reloader(session), answers
    await session.stop()
    await fake.stop()


def reloads(fake: FakeAmi) -> list[dict[str, str]]:
    return [a for a in fake.actions if a.get("Action") == "Reload"]


async def test_a_reload_names_res_pjsip(rig: tuple[FakeAmi, Reloader, list[str]]) -> None:
    fake, reloader, _ = rig
    await reloader.reload()
    assert [a["Module"] for a in reloads(fake)] == ["res_pjsip.so"]


async def test_a_reload_in_progress_is_retried(
    rig: tuple[FakeAmi, Reloader, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, reloader, answers = rig
    monkeypatch.setattr(reload_module, "BUSY_RETRY", 0.01)
    answers.extend(["busy", "busy", "ok"])
    await reloader.reload()
    assert len(reloads(fake)) == 3


async def test_callers_during_a_reload_share_the_next_one(
    rig: tuple[FakeAmi, Reloader, list[str]],
) -> None:
    fake, reloader, _ = rig
    first = asyncio.create_task(reloader.reload())
    await asyncio.sleep(0.01)  # the first reload is on the wire
    await asyncio.gather(first, *(reloader.reload() for _ in range(5)))
    assert len(reloads(fake)) == 2  # the running one, and one more for everyone who came later


async def test_a_refused_reload_raises_with_asterisks_reason(
    rig: tuple[FakeAmi, Reloader, list[str]],
) -> None:
    _, reloader, answers = rig
    answers.append("error")
    with pytest.raises(ReloadError, match="No such module"):
        await reloader.reload()
