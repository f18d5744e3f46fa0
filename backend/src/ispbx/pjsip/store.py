"""The live view of pjsip.conf: parse, watch for edits, keep the last good parse.

Like Asterisk, a broken edit after a good load keeps the old configuration; the error is reported
next to it. Files are polled (every file read, plus the directories they live in, so a new file
matching an include glob is noticed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ispbx.auth import redact_text
from ispbx.pjsip.parser import PjsipConfig, PjsipConfigError, parse_file

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class ConfigView:
    path: Path
    config: PjsipConfig | None  # the last good parse, if any
    error: str | None  # why the latest read failed, if it did
    version: int  # bumps on every change of config or error

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.config.warnings if self.config is not None else ()


def fingerprint(paths: tuple[Path, ...]) -> Fingerprint:
    watched = {*paths, *(p.parent for p in paths)}
    marks = []
    for path in sorted(watched):
        try:
            stat = path.stat()
        except OSError:
            marks.append((str(path), -1, -1))
        else:
            marks.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(marks)


class ConfigStore:
    def __init__(self, path: Path, *, poll_interval: float = 0.5) -> None:
        self._path = path
        self._poll_interval = poll_interval
        self._view = ConfigView(path=path, config=None, error=None, version=0)
        self._fingerprint: Fingerprint = ()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[ConfigView], None]] = []

    @property
    def view(self) -> ConfigView:
        return self._view

    def add_listener(self, callback: Callable[[ConfigView], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def load(self) -> ConfigView:
        """Read and parse now (blocking); keep the last good parse on failure."""
        self._apply(*self._read())
        return self._view

    async def reload(self) -> ConfigView:
        """Like :meth:`load`, parsing in a worker thread."""
        self._apply(*await asyncio.to_thread(self._read))
        return self._view

    def _read(self) -> tuple[PjsipConfig | None, str | None, Fingerprint]:
        before = fingerprint(self._view.config.files if self._view.config else (self._path,))
        try:
            config = parse_file(self._path)
        except PjsipConfigError as exc:
            return None, str(exc), before
        return config, None, fingerprint(config.files)

    def _apply(self, config: PjsipConfig | None, error: str | None, marks: Fingerprint) -> None:
        self._fingerprint = marks
        if error is not None:
            log.error("pjsip.conf not loaded, keeping the last good view: %s", redact_text(error))
            self._set(self._view.config, error)
            return
        for warning in config.warnings if config else ():
            log.warning("pjsip.conf: %s", redact_text(warning))
        self._set(config, None)

    def _set(self, config: PjsipConfig | None, error: str | None) -> None:
        old = self._view
        if config is old.config and error == old.error:
            return
        self._view = ConfigView(self._path, config, error, old.version + 1)
        for listener in list(self._listeners):
            listener(self._view)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="pjsip-conf-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            paths = self._view.config.files if self._view.config else (self._path,)
            if fingerprint(paths) != self._fingerprint:
                await self.reload()
