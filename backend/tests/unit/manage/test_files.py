"""Atomic config writes: owner and mode kept, all or nothing, a killed write leaves the old file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ispbx.manage.files import (
    FileWriteError,
    Journal,
    apply_contents,
    read_contents,
    remove_stale_temps,
    restore_pending,
    write_atomically,
)

BACKEND = Path(__file__).resolve().parents[3]


def test_a_write_keeps_the_mode_and_leaves_no_temp_file(tmp_path: Path) -> None:
    conf = tmp_path / "pjsip.conf"
    conf.write_bytes(b"[101]\ntype=endpoint\n")
    conf.chmod(0o640)
    write_atomically(conf, b"[102]\ntype=endpoint\n")
    assert conf.read_bytes() == b"[102]\ntype=endpoint\n"
    assert conf.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["pjsip.conf"]


def test_a_new_file_takes_the_mode_of_the_main_file(tmp_path: Path) -> None:
    main = tmp_path / "pjsip.conf"
    main.write_bytes(b"")
    main.chmod(0o604)
    managed = tmp_path / "pjsip_ispbx.conf"
    write_atomically(managed, b"; managed\n", like=main)
    assert managed.stat().st_mode & 0o777 == 0o604


def test_a_directory_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "pjsip.conf"
    with pytest.raises(FileWriteError) as caught:
        write_atomically(missing, b"x")
    assert str(missing) in str(caught.value)


def test_several_files_are_all_or_nothing(tmp_path: Path) -> None:
    one, two = tmp_path / "one.conf", tmp_path / "two.conf"
    one.write_bytes(b"one\n")
    two.write_bytes(b"two\n")
    bad = tmp_path / "gone" / "three.conf"  # its directory does not exist: the write fails
    journal = Journal(tmp_path / "state" / "journal.json")
    with pytest.raises(FileWriteError):
        apply_contents({one: b"ONE\n", two: b"TWO\n", bad: b"x"}, journal, like=one)
    assert read_contents([one, two]) == {one: b"one\n", two: b"two\n"}
    assert not journal.path.exists()


def test_apply_returns_the_previous_contents_and_removes_files_asked_to(tmp_path: Path) -> None:
    one, new, old = tmp_path / "one.conf", tmp_path / "new.conf", tmp_path / "old.conf"
    one.write_bytes(b"one\n")
    old.write_bytes(b"old\n")
    journal = Journal(tmp_path / "journal.json")
    previous = apply_contents({one: b"1\n", new: b"new\n", old: None}, journal, like=one)
    assert previous == {one: b"one\n", new: None, old: b"old\n"}
    assert read_contents([one, new, old]) == {one: b"1\n", new: b"new\n", old: None}


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from ispbx.manage.files import Journal, apply_contents
one, two = Path(sys.argv[1]), Path(sys.argv[2])
calls = []
def die_on_second(temp):
    calls.append(temp)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
apply_contents({one: b"ONE\\n", two: b"TWO\\n"}, Journal(Path(sys.argv[3])), like=one,
               before_rename=die_on_second)
"""


def test_a_process_killed_between_temp_write_and_rename_can_be_undone(tmp_path: Path) -> None:
    one, two = tmp_path / "one.conf", tmp_path / "two.conf"
    one.write_bytes(b"one\n")
    two.write_bytes(b"two\n")
    journal = tmp_path / "journal.json"
    env = {**os.environ, "PYTHONPATH": str(BACKEND / "src")}
    result = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(one), str(two), str(journal)],
        env=env,
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == -9  # SIGKILL, between the second temp file and its rename
    assert two.read_bytes() == b"two\n"  # the file being written is intact
    assert one.read_bytes() == b"ONE\n"  # the first one was already replaced …
    assert restore_pending(Journal(journal), like=one) == [one, two]  # … and is put back
    assert read_contents([one, two]) == {one: b"one\n", two: b"two\n"}
    assert remove_stale_temps({tmp_path}) != []  # the killed write's temp file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.conf", "two.conf"]


def test_the_journal_is_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state" / "journal.json")
    journal.save({tmp_path / "a": b"password = secret\n"})
    assert journal.path.stat().st_mode & 0o077 == 0
    assert journal.load() == {tmp_path / "a": b"password = secret\n"}
