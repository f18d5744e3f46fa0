"""Change detection: which events a new state of one endpoint means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ispbx.history.changes import ChangeDetector, EndpointState, RttThreshold, endpoint_changes
from ispbx.history.events import EventKind

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
URI = "sip:101@127.0.0.1:5062"
URI2 = "sip:101@127.0.0.1:5064"


def contact(uri: str = URI, **fields: str) -> dict[str, str]:
    base = {
        "URI": uri,
        "AOR": "101",
        "EndpointName": "101",
        "Status": "Reachable",
        "UserAgent": "TestPhone/1.0",
        "ViaAddress": "127.0.0.1:5062",
        "RoundtripUsec": "1500",
        "RegExpire": "1740830400",
        "CallID": "abc",
    }
    return base | fields


def state(*contacts: dict[str, str], device: str | None = "Not in use") -> EndpointState:
    return EndpointState({c["URI"]: c for c in contacts}, device)


def changes(previous: EndpointState | None, current: EndpointState | None) -> list[EventKind]:
    events, _ = endpoint_changes("pbx", "101", previous, current, now=NOW)
    return [event.kind for event in events]


def test_a_resync_that_changes_nothing_records_nothing() -> None:
    first = state(contact(), contact(URI2, Status="NonQualified"))
    _, kept = endpoint_changes("pbx", "101", None, first, now=NOW)
    # The same values, in new dicts, as a resync after an AMI reconnect builds them.
    again = state(contact(), contact(URI2, Status="NonQualified"))
    events, _ = endpoint_changes("pbx", "101", kept, again, now=NOW)
    assert events == []


def test_a_new_contact_is_registered_with_its_details() -> None:
    events, _ = endpoint_changes("pbx", "101", state(), state(contact()), now=NOW)
    assert [e.kind for e in events] == [EventKind.REGISTERED]
    event = events[0]
    assert (event.pbx, event.endpoint, event.occurred_at) == ("pbx", "101", NOW)
    assert event.data == {
        "uri": URI,
        "aor": "101",
        "status": "Reachable",
        "user_agent": "TestPhone/1.0",
        "via_address": "127.0.0.1:5062",
        "rtt_us": 1500,
        "reg_expire": 1740830400,
        "online": True,
        "contacts": 1,
    }


def test_a_vanished_contact_is_unregistered_with_what_was_known() -> None:
    events, _ = endpoint_changes("pbx", "101", state(contact()), state(), now=NOW)
    assert [e.kind for e in events] == [EventKind.UNREGISTERED]
    assert events[0].data["user_agent"] == "TestPhone/1.0"
    assert events[0].data["online"] is False
    assert events[0].data["contacts"] == 0


def test_a_moved_phone_is_unregistered_then_registered_and_stays_online() -> None:
    events, _ = endpoint_changes("pbx", "101", state(contact()), state(contact(URI2)), now=NOW)
    assert [e.kind for e in events] == [EventKind.UNREGISTERED, EventKind.REGISTERED]
    assert [e.data["uri"] for e in events] == [URI, URI2]
    assert [e.data["online"] for e in events] == [False, True]


def test_one_of_two_contacts_leaving_keeps_the_endpoint_online() -> None:
    events, _ = endpoint_changes(
        "pbx", "101", state(contact(), contact(URI2)), state(contact()), now=NOW
    )
    assert [e.kind for e in events] == [EventKind.UNREGISTERED]
    assert events[0].data["online"] is True
    assert events[0].data["contacts"] == 1


def test_status_transitions_are_reachable_and_unreachable() -> None:
    up = state(contact())
    down = state(contact(Status="Unreachable"))
    events, kept = endpoint_changes("pbx", "101", up, down, now=NOW)
    assert [e.kind for e in events] == [EventKind.UNREACHABLE]
    assert events[0].data["previous_status"] == "Reachable"
    assert events[0].data["online"] is False
    assert events[0].data["contacts"] == 1
    events, _ = endpoint_changes("pbx", "101", kept, up, now=NOW)
    assert [e.kind for e in events] == [EventKind.REACHABLE]
    assert events[0].data["online"] is True


def test_qualify_states_that_say_nothing_of_reachability_record_nothing() -> None:
    assert changes(state(contact(Status="Unknown")), state(contact(Status="NonQualified"))) == []
    assert changes(state(contact()), state(contact(Status="NonQualified"))) == []
    assert changes(state(contact(Status="Unknown")), state(contact())) == [EventKind.REACHABLE]


def test_rtt_is_recorded_beyond_both_thresholds_only() -> None:
    base = state(contact(RoundtripUsec="40000"))
    assert changes(base, state(contact(RoundtripUsec="59000"))) == []  # +47 %, 19 ms
    assert changes(base, state(contact(RoundtripUsec="61000"))) == [EventKind.RTT]  # +52 %, 21 ms
    slow = state(contact(RoundtripUsec="400000"))
    assert changes(slow, state(contact(RoundtripUsec="430000"))) == []  # 30 ms but +7 %
    assert changes(slow, state(contact(RoundtripUsec="150000"))) == [EventKind.RTT]
    assert changes(base, state(contact(RoundtripUsec="N/A"))) == []


def test_rtt_drift_is_measured_from_the_last_recorded_value() -> None:
    detector_state = state(contact(RoundtripUsec="40000"))
    recorded = []
    for rtt in range(45000, 100001, 5000):  # 5 ms steps: none crosses the threshold alone
        events, detector_state = endpoint_changes(
            "pbx", "101", detector_state, state(contact(RoundtripUsec=str(rtt))), now=NOW
        )
        recorded += [(e.data["previous_rtt_us"], e.data["rtt_us"]) for e in events]
    assert recorded == [(40000, 60000), (60000, 90000)]


def test_custom_rtt_threshold() -> None:
    events, _ = endpoint_changes(
        "pbx",
        "101",
        state(contact(RoundtripUsec="1000")),
        state(contact(RoundtripUsec="2000")),
        now=NOW,
        rtt=RttThreshold(ratio=0.5, min_us=500),
    )
    assert [e.kind for e in events] == [EventKind.RTT]


def test_device_state_changes_are_recorded_with_the_previous_state() -> None:
    events, _ = endpoint_changes(
        "pbx", "101", state(device="Not in use"), state(device="Ringing"), now=NOW
    )
    assert [(e.kind, e.data) for e in events] == [
        (EventKind.DEVICE_STATE, {"state": "Ringing", "previous": "Not in use"})
    ]
    assert changes(state(device="In use"), state(device="In use")) == []
    assert changes(state(device="In use"), state(device=None)) == []  # not known: no change


def test_first_sight_records_the_present_marked_initial() -> None:
    events, _ = endpoint_changes("pbx", "101", None, state(contact()), now=NOW)
    assert [e.kind for e in events] == [EventKind.REGISTERED, EventKind.DEVICE_STATE]
    assert all(e.data["initial"] is True for e in events)


def test_a_removed_endpoint_unregisters_its_contacts() -> None:
    assert changes(state(contact(), contact(URI2)), None) == [
        EventKind.UNREGISTERED,
        EventKind.UNREGISTERED,
    ]


def test_detector_keeps_its_own_copy_while_the_inventory_mutates_in_place() -> None:
    clock_times = iter([NOW, NOW + timedelta(seconds=5), NOW + timedelta(seconds=9)])
    detector = ChangeDetector("pbx", clock=lambda: next(clock_times))
    held = {URI: contact()}  # the inventory's dict, mutated in place between observations
    first = detector.observe("101", held, "Not in use")
    assert [e.kind for e in first] == [EventKind.REGISTERED, EventKind.DEVICE_STATE]
    held[URI]["Status"] = "Unreachable"
    second = detector.observe("101", held, "Unavailable")
    assert [e.kind for e in second] == [EventKind.UNREACHABLE, EventKind.DEVICE_STATE]
    assert second[0].occurred_at == NOW + timedelta(seconds=5)
    assert detector.endpoints() == {"101"}
    assert detector.observe("101", None, None)[0].kind == EventKind.UNREGISTERED
    assert not detector.known("101")
    assert detector.endpoints() == frozenset()


def test_contact_fields_kept_are_only_the_ones_history_uses() -> None:
    _, kept = endpoint_changes("pbx", "101", None, state(contact()), now=NOW)
    assert "CallID" not in kept.contacts[URI]
    assert "EndpointName" not in kept.contacts[URI]
