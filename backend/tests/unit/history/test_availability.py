"""Availability replayed from hand-made transition sequences (the pure part)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ispbx.history.availability import Presence, Transition, compute_availability
from ispbx.history.events import EventKind, to_us

T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
H = 3600
K = EventKind


def at(seconds: float) -> int:
    return to_us(T0 + timedelta(seconds=seconds))


def tr(seconds: float, kind: EventKind, data: Mapping[str, Any] | None = None) -> Transition:
    return Transition.of(at(seconds), kind, data or {})


def run(
    transitions: list[Transition],
    *,
    since: float = 0,
    until: float = 10 * H,
    before: Transition | None = None,
    ami_before: Transition | None = None,
) -> dict[str, Any]:
    result = compute_availability(
        "pbx",
        "101",
        at(since),
        at(until),
        before=before,
        ami_before=ami_before,
        transitions=transitions,
    )
    return result.as_dict()


def test_no_events_at_all_is_unknown_for_the_whole_window() -> None:
    result = run([])
    assert result["unknown_seconds"] == 10 * H
    assert result["online_seconds"] == result["offline_seconds"] == 0
    assert result["availability"] is None
    assert result["unknown_share"] == 1.0


def test_the_state_at_since_comes_from_the_last_event_before_it() -> None:
    result = run([], before=tr(-5 * H, K.REGISTERED))
    assert result["online_seconds"] == 10 * H
    assert result["availability"] == 1.0
    result = run([], before=tr(-5 * H, K.UNREGISTERED))
    assert result["offline_seconds"] == 10 * H


def test_a_known_outage_inside_the_window() -> None:
    events = [tr(2 * H, K.UNREGISTERED), tr(2 * H + 90, K.REGISTERED)]
    result = run(events, before=tr(-H, K.REGISTERED))
    assert result["offline_seconds"] == 90
    assert result["online_seconds"] == 10 * H - 90
    assert [p["state"] for p in result["periods"]] == ["online", "offline", "online"]
    assert result["periods"][1]["start"] == "2025-03-01T02:00:00.000000Z"
    assert result["periods"][1]["end"] == "2025-03-01T02:01:30.000000Z"


def test_an_outage_across_since_counts_only_its_part_inside() -> None:
    events = [tr(H, K.REGISTERED)]
    result = run(events, since=0, before=tr(-3 * H, K.UNREGISTERED))
    assert result["offline_seconds"] == H
    assert result["online_seconds"] == 9 * H


def test_an_outage_across_until_counts_only_its_part_inside() -> None:
    result = run([tr(9 * H, K.UNREGISTERED)], before=tr(-H, K.REGISTERED))
    assert result["offline_seconds"] == H
    assert result["online_seconds"] == 9 * H


def test_an_event_exactly_at_since_applies_from_since() -> None:
    result = run([tr(0, K.UNREGISTERED)], before=tr(-H, K.REGISTERED))
    assert result["offline_seconds"] == 10 * H
    assert result["online_seconds"] == 0
    assert len(result["periods"]) == 1


def test_unknown_until_the_first_event_when_nothing_came_before() -> None:
    result = run([tr(4 * H, K.REGISTERED)])
    assert result["unknown_seconds"] == 4 * H
    assert result["online_seconds"] == 6 * H
    assert result["availability"] == 1.0  # of the known time
    assert result["online_share"] == 0.6  # of the window


def test_ami_down_makes_the_state_unknown_and_its_return_restores_the_last_state() -> None:
    events = [tr(H, K.AMI_LOST), tr(3 * H, K.AMI_RECONNECTED)]
    result = run(events, before=tr(-H, K.REGISTERED))
    assert result["unknown_seconds"] == 2 * H
    assert result["online_seconds"] == 8 * H
    assert [p["state"] for p in result["periods"]] == ["online", "unknown", "online"]


def test_a_change_while_ami_was_down_shows_after_it_returns() -> None:
    # The resync after the reconnect records the unregistration at the reconnect.
    events = [tr(H, K.AMI_HUNG), tr(2 * H, K.AMI_CONNECTED), tr(2 * H, K.UNREGISTERED)]
    result = run(events, before=tr(-H, K.REGISTERED))
    assert result["online_seconds"] == H
    assert result["unknown_seconds"] == H
    assert result["offline_seconds"] == 8 * H


def test_ami_down_before_since_and_still_down() -> None:
    result = run([], before=tr(-2 * H, K.REGISTERED), ami_before=tr(-H, K.AMI_LOST))
    assert result["unknown_seconds"] == 10 * H
    result = run([], before=tr(-2 * H, K.REGISTERED), ami_before=tr(-H, K.AMI_RECONNECTED))
    assert result["online_seconds"] == 10 * H


def test_endpoint_state_from_the_events_own_summary() -> None:
    # One of two contacts leaves: still online; all contacts unreachable: unreachable.
    events = [
        tr(H, K.UNREGISTERED, {"online": True, "contacts": 1}),
        tr(2 * H, K.UNREACHABLE, {"online": False, "contacts": 1}),
        tr(3 * H, K.UNREGISTERED, {"online": False, "contacts": 0}),
        tr(4 * H, K.REGISTERED, {"online": True, "contacts": 1}),
    ]
    result = run(events, before=tr(-H, K.REGISTERED, {"online": True, "contacts": 2}))
    assert result["online_seconds"] == 8 * H
    assert result["unreachable_seconds"] == H
    assert result["offline_seconds"] == 2 * H  # the unreachable hour and the offline one
    assert [p["state"] for p in result["periods"]] == [
        Presence.ONLINE,
        Presence.UNREACHABLE,
        Presence.OFFLINE,
        Presence.ONLINE,
    ]


def test_events_at_until_and_an_empty_window_last_nothing() -> None:
    result = run([tr(10 * H, K.UNREGISTERED)], before=tr(-H, K.REGISTERED))
    assert result["online_seconds"] == 10 * H
    empty = run([], since=5 * H, until=5 * H, before=tr(-H, K.REGISTERED))
    assert empty["window_seconds"] == 0
    assert empty["periods"] == []
    assert empty["online_share"] is None


def test_microsecond_edges_add_up_to_the_window() -> None:
    events = [tr(0.000001, K.UNREGISTERED), tr(1.5, K.REGISTERED), tr(1.500001, K.UNREACHABLE)]
    result = run(events, until=3, before=tr(-1, K.REGISTERED))
    total = result["online_seconds"] + result["offline_seconds"] + result["unknown_seconds"]
    assert total == pytest.approx(3.0, abs=1e-9)
    assert result["online_seconds"] == pytest.approx(0.000002, abs=1e-9)
