"""The pjsip.conf watcher: what it notices, and the last good view it keeps."""

from __future__ import annotations

import os
from pathlib import Path

from ispbx.pjsip.store import ConfigStore

ENDPOINT = "[{name}]\ntype = endpoint\n"


def touch_later(path: Path, text: str) -> None:
    """Write ``text`` with an mtime clearly after the previous one."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def names(store: ConfigStore) -> list[str]:
    config = store.view.config
    return config.endpoint_names() if config else []


def test_an_edit_is_noticed_and_loaded(tmp_path: Path) -> None:
    conf = tmp_path / "pjsip.conf"
    conf.write_text(ENDPOINT.format(name="101"))
    store = ConfigStore(conf)
    store.load()
    assert not store.changed()
    touch_later(conf, ENDPOINT.format(name="101") + ENDPOINT.format(name="102"))
    assert store.changed()
    store.load()
    assert names(store) == ["101", "102"]


def test_a_broken_edit_keeps_the_last_good_view_with_the_error(tmp_path: Path) -> None:
    conf = tmp_path / "pjsip.conf"
    conf.write_text(ENDPOINT.format(name="101"))
    store = ConfigStore(conf)
    store.load()
    touch_later(conf, "[102](missing)\ntype = endpoint\n")
    store.load()
    assert names(store) == ["101"]
    assert store.view.error is not None and f"{conf}:1" in store.view.error


def test_an_include_created_after_a_failed_parse_is_noticed(tmp_path: Path) -> None:
    conf = tmp_path / "pjsip.conf"
    conf.write_text("#include users/u.conf\n")
    store = ConfigStore(conf)
    store.load()
    assert store.view.error is not None
    (tmp_path / "users").mkdir()
    assert store.changed()  # the config directory changed
    store.load()
    (tmp_path / "users" / "u.conf").write_text(ENDPOINT.format(name="201"))
    assert store.changed()
    store.load()
    assert store.view.error is None
    assert names(store) == ["201"]


def test_a_new_file_in_an_empty_glob_directory_is_noticed(tmp_path: Path) -> None:
    conf = tmp_path / "pjsip.conf"
    (tmp_path / "pjsip.d").mkdir()
    conf.write_text(ENDPOINT.format(name="101") + "#tryinclude pjsip.d/*.conf\n")
    store = ConfigStore(conf)
    store.load()
    (tmp_path / "pjsip.d" / "a.conf").write_text(ENDPOINT.format(name="301"))
    assert store.changed()
    store.load()
    assert names(store) == ["101", "301"]


def test_fixing_an_included_file_clears_the_error(tmp_path: Path) -> None:
    conf = tmp_path / "pjsip.conf"
    extra = tmp_path / "extra.conf"
    conf.write_text(ENDPOINT.format(name="101"))
    store = ConfigStore(conf)
    store.load()
    extra.write_text(ENDPOINT.format(name="401") + "#include extra.conf\n")  # includes itself
    touch_later(conf, ENDPOINT.format(name="101") + "#include extra.conf\n")
    store.load()
    assert store.view.error is not None
    touch_later(extra, ENDPOINT.format(name="401"))
    assert store.changed()
    store.load()
    assert store.view.error is None
    assert names(store) == ["101", "401"]


def test_a_write_during_the_parse_is_not_missed(tmp_path: Path) -> None:
    """Marks are taken before each read, so a file rewritten while (or just after) it was read
    still counts as changed at the next poll."""
    conf = tmp_path / "pjsip.conf"
    conf.write_text(ENDPOINT.format(name="1000"))
    store = ConfigStore(conf)
    original = store._read

    def read_then_finish_the_write() -> object:
        result = original()
        touch_later(conf, ENDPOINT.format(name="1000") + ENDPOINT.format(name="1001"))
        return result

    store._read = read_then_finish_the_write  # type: ignore[method-assign,assignment]
    store.load()
    assert names(store) == ["1000"]
    assert store.changed()


def test_a_writer_holding_the_store_is_not_raced_by_a_re_read(tmp_path: Path) -> None:
    conf = tmp_path / "pjsip.conf"
    conf.write_text(ENDPOINT.format(name="101"))
    store = ConfigStore(conf)
    store.load()
    with store.held():
        touch_later(conf, ENDPOINT.format(name="101") + ENDPOINT.format(name="102"))
        assert not store.changed()  # the watcher and refresh() keep the view as loaded
    assert store.changed()  # not adopted: the next poll reads it
    store.load()
    assert names(store) == ["101", "102"]


def test_an_adopted_write_names_the_endpoints_it_touched(tmp_path: Path) -> None:
    conf = tmp_path / "pjsip.conf"
    conf.write_text(ENDPOINT.format(name="101"))
    store = ConfigStore(conf)
    view = store.load()
    assert view.touched is None  # a read from disk: anything may have changed
    written = {conf: (ENDPOINT.format(name="101") + ENDPOINT.format(name="102")).encode()}
    with store.held():
        touch_later(conf, written[conf].decode())
        other = ConfigStore(conf)
        parsed = other.load()
        assert parsed.config is not None and parsed.check is not None
        adopted = store.adopt(parsed.config, parsed.check, written, written, frozenset({"102"}))
    assert adopted.touched == frozenset({"102"})
    assert names(store) == ["101", "102"]
    assert not store.changed()  # the bytes it wrote are the ones it adopted
