"""The live view of pjsip.conf: parse, watch for edits, keep the last good parse.

Listeners of ``changes`` get every new view (a new good parse, or a new error beside the last good
one); logging it is their business, since only they know what must be masked.

Like Asterisk, a broken edit after a good load keeps the old configuration; the error is reported
next to it. Files are polled. What is watched is recorded while parsing, *before* each read:
every file the parser opened or tried to open (a missing ``#include`` too), the directory of each
(and, when that does not exist, the nearest one that does), and the directory of each include
glob. So a write during a parse, a file created later, a new match for a glob, and a fix to an
included file after a failed parse are all noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ispbx.gcpause import gc_paused
from ispbx.listeners import Listeners
from ispbx.pjsip.checks import ConfigCheck, check_config
from ispbx.pjsip.parser import (
    PjsipConfig,
    PjsipConfigError,
    decode_config,
    default_glob,
    parse_file,
)
from ispbx.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Mark = tuple[int, int]  # (mtime_ns, size); (-1, -1) when missing


def fileset_tag(contents: Mapping[Path, bytes | None]) -> str:
    """A strong ETag for the content of a whole set of config files (a missing file counts)."""
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(contents):
        data = contents[path]
        digest.update(os.fsencode(path) + b"\0")
        digest.update(b"-" if data is None else b"+%d:" % len(data) + data)
    return f'"{digest.hexdigest()}"'


Parsed = tuple[PjsipConfig, ConfigCheck]
Marks = dict[Path, Mark]


def mark(path: Path) -> Mark:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


class Recorder:
    """Wraps the parser's file access and notes what to watch, as it was before each read."""

    def __init__(self) -> None:
        self.marks: Marks = {}
        self.contents: dict[Path, bytes | None] = {}  # what each read found (None: missing)

    def note(self, path: Path) -> None:
        self.marks.setdefault(path, mark(path))
        parent = path.parent
        while True:
            found = self.marks.setdefault(parent, mark(parent))
            if found != (-1, -1) or parent == parent.parent:
                return
            parent = parent.parent

    def read_text(self, path: Path) -> str:
        self.note(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.contents[path] = None
            raise
        self.contents[path] = data
        return decode_config(data)

    def glob(self, pattern: str) -> list[Path]:
        self.note(Path(pattern).parent)
        return default_glob(pattern)


@dataclass(frozen=True)
class ConfigView:
    path: Path
    config: PjsipConfig | None  # the last good parse, if any
    error: str | None  # why the latest read failed, if it did
    version: int  # bumps on every change of config or error
    check: ConfigCheck | None = None  # what Asterisk makes of each object of ``config``
    # the files the latest read found (None: a missing include), and their ETag
    contents: Mapping[Path, bytes | None] = field(default_factory=dict)
    etag: str = ""
    # the endpoints whose options may differ from the view before (None: any of them); a
    # writer that adopts its own parse knows
    touched: frozenset[str] | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Lines Asterisk skips, and objects it refuses or would complain of (file:line)."""
        if self.config is None:
            return ()
        return self.config.warnings + (self.check.warnings if self.check else ())


class ConfigStore:
    def __init__(self, path: Path, *, poll_interval: float = 0.5) -> None:
        self._path = path
        self._poll_interval = poll_interval
        self._view = ConfigView(path=path, config=None, error=None, version=0)
        self._good_marks: Marks = {}  # what the last good parse read
        self._marks: Marks = {}  # what to watch now
        self._task: asyncio.Task[None] | None = None
        self._held = 0  # writers that hold the re-reading (see held())
        self.changes: Listeners[ConfigView] = Listeners("pjsip.conf change")

    @property
    def view(self) -> ConfigView:
        return self._view

    def load(self) -> ConfigView:
        """Read and parse now (blocking); keep the last good parse on failure."""
        self._apply(*self._read())
        return self._view

    async def reload(self) -> ConfigView:
        """Like :meth:`load`, parsing in a worker thread."""
        self._apply(*await asyncio.to_thread(self._read))
        return self._view

    async def refresh(self) -> ConfigView:
        """The view, re-read first if any watched file changed since the last read (so a caller
        that knows a change happened need not wait for the next poll)."""
        if self.changed():
            return await self.reload()
        return self._view

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """While a writer writes the files, reloads and reads back, the files are not re-read:
        until the writer adopts its own parse, the view stays the one of the files as they were
        (what Asterisk had loaded), and the write does not race a parse of its own bytes. A
        change the writer did not adopt (a rollback, a hand edit meanwhile) is read by the next
        poll after it lets go."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    def adopt(
        self,
        config: PjsipConfig,
        check: ConfigCheck,
        contents: Mapping[Path, bytes | None],
        written: Mapping[Path, bytes | None],
        touched: frozenset[str] | None = None,
    ) -> ConfigView:
        """Take the parse a writer made of the very bytes it just wrote, instead of reading every
        file again; if any written file no longer holds those bytes (a hand edit came in
        between), nothing is adopted and the next refresh reads the files. ``touched``: the
        endpoints whose options the write changed (None: possibly any)."""
        for path, data in written.items():
            try:
                now: bytes | None = path.read_bytes()
            except FileNotFoundError:
                now = None
            if now != data:
                return self._view
        for path in written:
            self._marks[path] = mark(path)
            self._marks[path.parent] = mark(path.parent)
        self._good_marks = dict(self._marks)
        self._set(config, check, None, contents, touched)
        return self._view

    def changed(self) -> bool:
        """Whether a watched file changed since the last read (never while a writer holds)."""
        if self._held:
            return False
        return any(mark(path) != before for path, before in self._marks.items())

    def _read(self) -> tuple[Parsed | None, str | None, Recorder]:
        recorder = Recorder()
        with gc_paused():
            try:
                config = parse_file(self._path, read_text=recorder.read_text, glob=recorder.glob)
            except PjsipConfigError as exc:
                return None, str(exc), recorder
            return (config, check_config(config)), None, recorder

    def _apply(self, parsed: Parsed | None, error: str | None, recorder: Recorder) -> None:
        marks, contents = recorder.marks, recorder.contents
        if error is not None or parsed is None:
            # Watch the new attempt's files and the last good parse's: fixing either counts.
            self._marks = {**self._good_marks, **marks}
            self._set(self._view.config, self._view.check, error, contents)
            return
        self._good_marks = self._marks = marks
        self._set(*parsed, None, contents)

    def _set(
        self,
        config: PjsipConfig | None,
        check: ConfigCheck | None,
        error: str | None,
        contents: Mapping[Path, bytes | None],
        touched: frozenset[str] | None = None,
    ) -> None:
        old = self._view
        etag = fileset_tag(contents)
        if config is old.config and error == old.error and etag == old.etag:
            return
        self._view = ConfigView(
            self._path, config, error, old.version + 1, check, dict(contents), etag, touched
        )
        self.changes.emit(self._view)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="pjsip-conf-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                if self.changed():
                    await self.reload()
            except Exception:  # a bug here must not stop the watching for good
                log.exception("watching pjsip.conf failed; trying again")
