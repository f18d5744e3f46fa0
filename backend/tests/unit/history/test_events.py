"""Event values, UTC microsecond time, and secrets kept out of the history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ispbx.history.events import (
    MASK,
    EventKind,
    HistoryEvent,
    clean_data,
    from_us,
    iso,
    mask_secret_lines,
    parse_kinds,
    to_us,
)


def test_microsecond_time_round_trips_exactly() -> None:
    moment = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert from_us(to_us(moment)) == moment
    assert to_us(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1_000_000


def test_offsets_are_converted_to_utc() -> None:
    paris = datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert to_us(paris) == to_us(datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
    assert iso(paris) == "2025-03-01T12:00:00.000000Z"


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_us(datetime(2025, 3, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        HistoryEvent("pbx", "101", EventKind.RTT, datetime(2025, 3, 1))


def test_event_copies_its_data_so_the_caller_may_mutate_its_own() -> None:
    data = {"uri": "sip:101@127.0.0.1"}
    event = HistoryEvent("pbx", "101", EventKind.REGISTERED, datetime.now(UTC), data)
    data["uri"] = "changed"
    assert event.data["uri"] == "sip:101@127.0.0.1"


def test_kind_words_are_parsed_and_unknown_ones_named() -> None:
    assert parse_kinds(["registered", "rtt"]) == {EventKind.REGISTERED, EventKind.RTT}
    assert parse_kinds("device_state") == {EventKind.DEVICE_STATE}
    with pytest.raises(ValueError, match="'bogus'"):
        parse_kinds(["registered", "bogus"])


def test_secret_keys_are_masked_at_any_depth_in_any_spelling() -> None:
    data = {
        "Password": "s1",
        "md5_cred": "s2",
        "MD5Cred": "s3",
        "nested": {"oauth_secret": "s4", "refresh_token": "s5", "list": [{"password": "s6"}]},
        "user_agent": "Phone/1.0",
        "via_address": "127.0.0.1:5062",
    }
    cleaned = clean_data(data)
    assert cleaned["Password"] == cleaned["md5_cred"] == cleaned["MD5Cred"] == MASK
    assert cleaned["nested"]["oauth_secret"] == cleaned["nested"]["refresh_token"] == MASK
    assert cleaned["nested"]["list"][0]["password"] == MASK
    assert cleaned["user_agent"] == "Phone/1.0"
    assert cleaned["via_address"] == "127.0.0.1:5062"
    assert "s1" not in repr(cleaned)


def test_values_become_json_types() -> None:
    moment = datetime(2025, 3, 1, tzinfo=UTC)
    cleaned = clean_data({"at": moment, "set": {1}, "nan": float("nan"), "n": 2, "ok": True})
    assert cleaned == {
        "at": "2025-03-01T00:00:00.000000Z",
        "set": "{1}",
        "nan": None,
        "n": 2,
        "ok": True,
    }


def test_secret_option_lines_are_masked_in_config_text_and_diffs() -> None:
    text = (
        "[101]\n"
        "type = auth\n"
        "password = hunter2 ; the customer's\n"
        "-md5_cred=abc\n"
        "+password => new-one\n"
        "username = 101\n"
    )
    masked = mask_secret_lines(text)
    assert "hunter2" not in masked
    assert "abc" not in masked
    assert "new-one" not in masked
    assert f"password = {MASK} ; the customer's" in masked
    assert f"+password => {MASK}" in masked
    assert "username = 101" in masked
