"""Flapping: N changes within M minutes start it, M quiet minutes stop it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ispbx.history.events import EventKind, HistoryEvent
from ispbx.history.flapping import FlapDetector

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def test_the_nth_change_within_the_window_starts_flapping() -> None:
    detector = FlapDetector(4, 10 * MIN)
    assert detector.note("101", T0) == []
    assert detector.note("101", T0 + MIN) == []
    assert detector.note("101", T0 + 2 * MIN) == []
    assert not detector.flapping("101")
    started = detector.note("101", T0 + 3 * MIN)
    assert [(t.endpoint, t.started, t.at, t.changes) for t in started] == [
        ("101", True, T0 + 3 * MIN, 4)
    ]
    assert detector.flapping("101")
    assert detector.note("101", T0 + 4 * MIN) == []  # already flapping: no second start
    assert detector.flapping_endpoints() == {"101"}


def test_changes_spread_wider_than_the_window_do_not_flap() -> None:
    detector = FlapDetector(4, 10 * MIN)
    for minute in (0, 4, 8, 12, 16, 20):  # never 4 within 10 minutes
        assert detector.note("101", T0 + minute * MIN) == []
    assert not detector.flapping("101")


def test_exactly_one_window_apart_is_outside_it() -> None:
    detector = FlapDetector(2, 10 * MIN)
    detector.note("101", T0)
    assert detector.note("101", T0 + 10 * MIN) == []
    assert detector.note("101", T0 + 10 * MIN + timedelta(seconds=1))[0].started


def test_quiet_for_a_window_stops_flapping_at_the_right_time() -> None:
    detector = FlapDetector(2, 10 * MIN)
    detector.note("101", T0)
    detector.note("101", T0 + MIN)
    detector.note("101", T0 + 2 * MIN)
    assert detector.tick(T0 + 11 * MIN) == []  # 9 quiet minutes
    stopped = detector.tick(T0 + 15 * MIN)
    assert [(t.started, t.at, t.changes) for t in stopped] == [(False, T0 + 12 * MIN, 3)]
    assert not detector.flapping("101")
    assert detector.tick(T0 + 30 * MIN) == []


def test_a_change_after_a_quiet_window_stops_then_counts_afresh() -> None:
    detector = FlapDetector(2, 10 * MIN)
    detector.note("101", T0)
    detector.note("101", T0 + MIN)
    transitions = detector.note("101", T0 + 30 * MIN)  # no tick in between
    assert [(t.started, t.at) for t in transitions] == [(False, T0 + 11 * MIN)]
    assert not detector.flapping("101")


def test_endpoints_are_counted_apart() -> None:
    detector = FlapDetector(2, 10 * MIN)
    detector.note("101", T0)
    assert detector.note("102", T0) == []
    assert detector.note("101", T0 + MIN)[0].endpoint == "101"
    assert not detector.flapping("102")


def test_one_observation_counts_once_and_only_contact_transitions_count() -> None:
    detector = FlapDetector(2, 10 * MIN)

    def event(kind: EventKind, minute: int) -> HistoryEvent:
        return HistoryEvent("pbx", "101", kind, T0 + minute * MIN)

    moved = [event(EventKind.UNREGISTERED, 0), event(EventKind.REGISTERED, 0)]
    assert detector.note_events(moved) == []
    assert detector.note_events([event(EventKind.RTT, 1), event(EventKind.DEVICE_STATE, 1)]) == []
    started = detector.note_events([event(EventKind.UNREACHABLE, 2)])
    assert [t.started for t in started] == [True]


def test_transitions_become_history_events() -> None:
    detector = FlapDetector(1, 10 * MIN)
    (start,) = detector.note("101", T0)
    event = start.event("pbx")
    assert (event.kind, event.endpoint, event.occurred_at) == (
        EventKind.FLAPPING_STARTED,
        "101",
        T0,
    )
    (stop,) = detector.tick(T0 + 20 * MIN)
    assert stop.event("pbx").kind == EventKind.FLAPPING_STOPPED


def test_the_clock_is_used_when_no_time_is_given() -> None:
    now = [T0]
    detector = FlapDetector(2, 10 * MIN, clock=lambda: now[0])
    detector.note("101")
    now[0] = T0 + MIN
    assert detector.note("101")[0].at == T0 + MIN
    now[0] = T0 + 12 * MIN
    assert detector.tick()[0].at == T0 + 11 * MIN


def test_forget_drops_an_endpoint() -> None:
    detector = FlapDetector(1, 10 * MIN)
    detector.note("101", T0)
    detector.forget("101")
    assert not detector.flapping("101")
    assert detector.tick(T0 + 20 * MIN) == []


def test_nonsense_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        FlapDetector(0, 10 * MIN)
    with pytest.raises(ValueError):
        FlapDetector(4, timedelta(0))
