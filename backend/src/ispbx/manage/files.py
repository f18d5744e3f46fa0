"""Writing the admin's config files: atomically, keeping owner, group and mode, all or nothing.

One file: a temp file in the same directory, fsync, rename over the original, fsync the directory
(a reader — Asterisk, the service's own watcher — sees the old file or the new one, never half).
Several files (an edit, an import, a rollback): before the first rename the previous contents go
to a journal next to the service's state; if anything fails, what was written is put back; if the
process dies half-way, :func:`restore_pending` puts the previous contents back at the next start.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
TEMP_SUFFIX = ".ispbx-tmp"
Contents = Mapping[Path, bytes | None]  # None: the file does not exist (or is to be removed)


class FileWriteError(Exception):
    """A config file cannot be written; ``str()`` names the path and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_contents(paths: list[Path]) -> dict[Path, bytes | None]:
    """The bytes of each file now (None for a missing one)."""
    found: dict[Path, bytes | None] = {}
    for path in paths:
        try:
            found[path] = path.read_bytes()
        except FileNotFoundError:
            found[path] = None
    return found


@dataclass(frozen=True)
class Ownership:
    mode: int
    uid: int
    gid: int

    @classmethod
    def of(cls, path: Path) -> Ownership:
        stat = path.stat()
        return cls(stat.st_mode & 0o7777, stat.st_uid, stat.st_gid)


def write_atomically(
    path: Path,
    content: bytes,
    *,
    like: Path | None = None,
    before_rename: Callable[[Path], None] | None = None,
) -> None:
    """Replace ``path`` by ``content``; a new file takes the owner, group and mode of ``like``.

    ``before_rename(temp)`` runs after the temp file is complete (tests kill the process there).
    """
    try:
        keep = Ownership.of(path) if path.exists() else Ownership.of(like) if like else None
        descriptor, name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX
        )
    except OSError as exc:
        raise FileWriteError(path, _why(exc)) from None
    temp = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            _own(handle.fileno(), keep)
            os.fsync(handle.fileno())
        if before_rename is not None:
            before_rename(temp)
        os.replace(temp, path)
        _fsync_directory(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise FileWriteError(path, _why(exc)) from None


def remove_file(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
        _fsync_directory(path.parent)
    except OSError as exc:
        raise FileWriteError(path, _why(exc)) from None


def _own(descriptor: int, keep: Ownership | None) -> None:
    if keep is None:
        return
    with contextlib.suppress(PermissionError):  # a non-root service keeps its own uid
        os.fchown(descriptor, keep.uid, keep.gid)
    os.fchmod(descriptor, keep.mode)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _why(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (the service's user cannot write it or its directory)"
    return exc.strerror or str(exc)


def writable(path: Path) -> str | None:
    """Why ``path`` (or, for a new file, its directory) cannot be written, or None."""
    target = path if path.exists() else path.parent
    if not os.access(target, os.W_OK):
        return f"{target}: permission denied (the service's user cannot write it)"
    if path.exists() and not os.access(path.parent, os.W_OK):
        return f"{path.parent}: permission denied (needed for the atomic rename)"
    return None


# -- several files ---------------------------------------------------------------------------


class Journal:
    """The previous contents of the files a write is about to change, on disk until it is done."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, previous: Contents) -> None:
        data = {
            str(path): None if content is None else base64.b64encode(content).decode()
            for path, content in previous.items()
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.path, json.dumps(data).encode())
        os.chmod(self.path, 0o600)  # it holds the config, passwords included

    def load(self) -> dict[Path, bytes | None] | None:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("unreadable write journal %s: %s", self.path, exc)
            return None
        return {
            Path(path): None if text is None else base64.b64decode(text)
            for path, text in data.items()
        }

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def apply_contents(
    wanted: Contents,
    journal: Journal,
    *,
    like: Path,
    before_rename: Callable[[Path], None] | None = None,
) -> dict[Path, bytes | None]:
    """Write every file of ``wanted`` (None: remove it), all or nothing; the previous contents.

    On a failure the files already written get their previous contents back and the
    FileWriteError is raised."""
    previous = read_contents(list(wanted))
    journal.save(previous)
    done: list[Path] = []
    try:
        for path, content in wanted.items():
            _put(path, content, like=like, before_rename=before_rename)
            done.append(path)
    except FileWriteError:
        _put_back({path: previous[path] for path in done}, like)
        journal.clear()
        raise
    journal.clear()
    return previous


def _put(
    path: Path,
    content: bytes | None,
    *,
    like: Path,
    before_rename: Callable[[Path], None] | None = None,
) -> None:
    if content is None:
        remove_file(path)
    else:
        write_atomically(path, content, like=like, before_rename=before_rename)


def _put_back(previous: Contents, like: Path) -> None:
    for path, content in previous.items():
        try:
            _put(path, content, like=like)
        except FileWriteError as exc:  # nothing more can be done than to say so
            log.error("could not put %s back: %s", path, exc)


def remove_stale_temps(directories: set[Path]) -> list[Path]:
    """Temp files a killed write left behind (they never match ``*.conf``, but are litter)."""
    removed = []
    for directory in directories:
        for stale in directory.glob(f".*{TEMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                stale.unlink()
                removed.append(stale)
    return removed


def restore_pending(journal: Journal, like: Path) -> list[Path]:
    """At start: a write that was cut short (the process died) is undone; the files restored."""
    previous = journal.load()
    if previous is None:
        return []
    names = ", ".join(map(str, previous))
    log.warning("a configuration write was interrupted: restoring %s", names)
    _put_back(previous, like)
    journal.clear()
    return list(previous)
