"""Listeners and AsyncHooks: unsubscribing is idempotent, a failing listener is logged and the
others (and the caller) carry on."""

from __future__ import annotations

import logging

import pytest

from ispbx.listeners import AsyncHooks, Listeners


def test_unsubscribe_stops_the_calls_and_is_safe_twice() -> None:
    seen: list[int] = []
    listeners: Listeners[int] = Listeners("test")
    unsubscribe = listeners.add(seen.append)
    listeners.emit(1)
    unsubscribe()
    unsubscribe()  # a second call is harmless
    listeners.emit(2)
    assert seen == [1]
    assert len(listeners) == 0


def test_the_same_callback_added_twice_is_called_twice_and_removed_once_per_unsubscribe() -> None:
    seen: list[int] = []
    listeners: Listeners[int] = Listeners("test")
    first = listeners.add(seen.append)
    listeners.add(seen.append)
    listeners.emit(1)
    first()
    first()
    listeners.emit(2)
    assert seen == [1, 1, 2]


def test_a_raising_listener_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def broken(_value: str) -> None:
        raise RuntimeError("listener bug")

    listeners: Listeners[str] = Listeners("inventory change")
    listeners.add(seen.append)
    listeners.add(broken)
    listeners.add(lambda value: seen.append(value.upper()))
    with caplog.at_level(logging.ERROR, logger="ispbx.listeners"):
        listeners.emit("x")  # does not raise
    assert seen == ["x", "X"]
    (record,) = caplog.records
    assert "inventory change listener" in record.getMessage()
    assert record.exc_info is not None and "listener bug" in str(record.exc_info[1])


def test_a_listener_may_unsubscribe_itself_while_being_called() -> None:
    seen: list[int] = []
    listeners: Listeners[int] = Listeners("test")

    def once(value: int) -> None:
        seen.append(value)
        unsubscribe()

    unsubscribe = listeners.add(once)
    listeners.add(lambda value: seen.append(value * 10))
    listeners.emit(1)
    listeners.emit(2)
    assert seen == [1, 10, 20]


async def test_async_hooks_are_awaited_in_order_and_a_failure_does_not_stop_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def first(value: str) -> None:
        seen.append(f"first {value}")

    async def broken(_value: str) -> None:
        raise ValueError("hook bug")

    async def last(value: str) -> None:
        seen.append(f"last {value}")

    hooks: AsyncHooks[str] = AsyncHooks("AMI login")
    hooks.add(first)
    hooks.add(broken)
    unsubscribe = hooks.add(last)
    with caplog.at_level(logging.ERROR, logger="ispbx.listeners"):
        await hooks.run("a")
    unsubscribe()
    unsubscribe()
    await hooks.run("b")
    assert seen == ["first a", "last a", "first b"]
    assert any("AMI login hook" in r.getMessage() for r in caplog.records)
