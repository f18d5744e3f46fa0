"""Background task helpers shared by the long-lived components."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(
    *tasks: asyncio.Task[Any] | None,
    timeout: float | None = None,  # noqa: ASYNC109  (a bound on waiting, not on work)
) -> None:
    """Cancel the given tasks (None and finished ones are skipped) and wait until each has ended,
    at most ``timeout`` seconds. A task that had failed is logged. If the caller itself is being
    cancelled meanwhile, that cancellation propagates."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    if not running:
        return
    await asyncio.wait(running, timeout=timeout)
    for task in running:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())
