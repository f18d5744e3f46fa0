"""Subscriptions between the parts of one PBX: ``add()`` returns an unsubscribe, ``emit()`` calls
every listener and logs (never raises) when one fails, so a bug in one consumer cannot end the
producer's task (a sync, a file watch, the AMI reader)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
Unsubscribe = Callable[[], None]


class _Subscribers(Generic[T]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[object, T] = {}  # one key per subscription, in order

    def add(self, item: T) -> Unsubscribe:
        """Subscribe ``item``; the returned function ends this subscription (and only this one,
        however often it is called)."""
        key = object()
        self._items[key] = item

        def unsubscribe() -> None:
            self._items.pop(key, None)

        return unsubscribe

    def __len__(self) -> int:
        return len(self._items)

    def _snapshot(self) -> list[T]:
        return list(self._items.values())  # a listener may unsubscribe while being called


class Listeners(_Subscribers[Callable[[T], None]]):
    """Synchronous listeners of one kind of value."""

    def emit(self, value: T) -> None:
        for listener in self._snapshot():
            try:
                listener(value)
            except Exception:  # one broken listener must not stop the others or the caller
                log.exception("%s listener %r failed", self.what, listener)


class AsyncHooks(_Subscribers[Callable[[T], Awaitable[None]]]):
    """Async hooks, awaited one after the other in the order they were added."""

    async def run(self, value: T) -> None:
        for hook in self._snapshot():
            try:
                await hook(value)
            except Exception:  # as above; CancelledError is not an Exception and propagates
                log.exception("%s hook %r failed", self.what, hook)
