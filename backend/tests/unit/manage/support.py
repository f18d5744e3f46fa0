"""In-memory config files for the document tests, and the reader's view of them."""

from __future__ import annotations

import fnmatch
import os.path
from collections.abc import Mapping
from pathlib import Path

from ispbx.manage.document import ConfigDocument
from ispbx.pjsip import PjsipConfig, parse_text

CONF_DIR = Path("/etc/asterisk")
MAIN = CONF_DIR / "pjsip.conf"
TYPES = ("endpoint", "auth", "aor", "identify", "transport", "registration", "global")


def _key(path: Path) -> Path:
    return Path(os.path.normpath(CONF_DIR / path))


class Files:
    """A set of config files by absolute path, as bytes."""

    def __init__(self, files: Mapping[str | Path, bytes | str]) -> None:
        self.files: dict[Path, bytes] = {
            _key(Path(name)): data.encode() if isinstance(data, str) else data
            for name, data in files.items()
        }

    def read(self, path: Path) -> bytes:
        try:
            return self.files[_key(path)]
        except KeyError:
            raise FileNotFoundError(path) from None

    def glob(self, pattern: str) -> list[Path]:
        return sorted(p for p in self.files if fnmatch.fnmatchcase(str(p), pattern))

    def read_text(self, path: Path) -> str:
        return self.read(path).decode("utf-8", errors="replace")

    def load(self) -> ConfigDocument:
        return ConfigDocument.load(MAIN, read=self.read, glob=self.glob)

    def parse(self) -> PjsipConfig:
        """The reader's view (the validator the apply pipeline uses)."""
        return parse_text(self.read_text(MAIN), path=MAIN, read_text=self.read_text, glob=self.glob)

    def with_changes(self, document: ConfigDocument) -> Files:
        changed = Files({})
        changed.files = {**self.files, **{_key(p): d for p, d in document.changed_files().items()}}
        return changed


def effective(config: PjsipConfig) -> dict[tuple[str, str], dict[str, str]]:
    """Every object's effective options, by (type, id)."""
    return {
        (kind, name): dict(found.options)
        for kind in {s.type for s in config.sections if s.type} | set(TYPES)
        for name, found in config.objects(kind).items()
    }


def changed_lines(before: bytes, after: bytes) -> tuple[list[bytes], list[bytes]]:
    """Lines only in `before`, lines only in `after` (a line keeps its CR), by a diff."""
    import difflib

    old, new = before.split(b"\n"), after.split(b"\n")
    removed: list[bytes] = []
    added: list[bytes] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed.extend(old[i1:i2])
            added.extend(new[j1:j2])
    return removed, added
