"""Small parts of the metrics: histogram buckets, the text format helpers, the activity counters,
the flapping extension point."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from prometheus_client import CollectorRegistry, generate_latest

from ispbx.ami import AmiMessage
from ispbx.metrics.activity import PbxActivity
from ispbx.metrics.flapping import FlappingCollector
from ispbx.metrics.histogram import Buckets
from ispbx.metrics.text import escape_label_value, number
from tests.unit.metrics.rig import named, parse


def test_buckets_count_values_on_a_bound_as_less_or_equal() -> None:
    buckets = Buckets((0.01, 0.1, 1.0))
    for seconds in (0.01, 0.05, 0.1, 3.0):
        buckets.observe(seconds)
    assert buckets.cumulative() == [("0.01", 1.0), ("0.1", 3.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert buckets.count == 4
    assert round(buckets.sum, 6) == 3.16


def test_numbers_and_label_values_as_the_text_format_wants_them() -> None:
    assert number(1.0) == "1"
    assert number(0.0015) == "0.0015"
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


class States:
    def __init__(
        self, states: dict[str, str], contacts: dict[str, list[AmiMessage]] | None = None
    ) -> None:
        self.states = states
        self.contacts_of = contacts or {}

    def contacts(self, name: str) -> list[AmiMessage]:
        return list(self.contacts_of.get(name, []))

    def endpoint_names(self) -> list[str]:
        return list(self.states)

    def has(self, name: str) -> bool:
        return name in self.states

    def device_state(self, name: str) -> str:
        return self.states.get(name, "Unknown")


def test_the_first_sight_of_an_endpoint_is_no_state_change() -> None:
    inventory = States({"101": "Not in use", "102": "Unavailable"})
    activity = PbxActivity(inventory)
    activity.endpoints_changed(None)
    assert +activity.state_changes == {}
    inventory.states["102"] = "Ringing"
    inventory.states["103"] = "Not in use"  # new: first sight
    activity.endpoints_changed({"102", "103"})
    assert activity.state_changes == {"online": 1, "offline": 0}


def test_a_removed_endpoint_coming_back_is_a_first_sight_again() -> None:
    inventory = States({"101": "Not in use"})
    activity = PbxActivity(inventory)
    activity.endpoints_changed(None)
    del inventory.states["101"]
    activity.endpoints_changed(None)
    inventory.states["101"] = "Unavailable"
    activity.endpoints_changed(None)
    assert activity.state_changes["offline"] == 0


def test_contact_events_without_a_round_trip_add_no_observation() -> None:
    activity = PbxActivity(States({}))
    for usec in ("0", "N/A", "", "12x"):
        activity.on_ami_event(
            {"Event": "ContactStatus", "ContactStatus": "NonQualified", "RoundtripUsec": usec}
        )
    activity.on_ami_event({"Event": "DeviceStateChange", "RoundtripUsec": "5000"})
    assert activity.rtt.count == 0
    assert activity.registration_events["registered"] == 1  # one contact (the same empty URI)
    assert activity.registration_events["updated"] == 3


def test_a_contact_known_at_a_sync_is_no_new_registration() -> None:
    inventory = States({"101": "Not in use"}, {"101": [{"URI": "sip:101@127.0.0.1:5070"}]})
    activity = PbxActivity(inventory)
    activity.endpoints_changed(None)
    event = {"Event": "ContactStatus", "EndpointName": "101", "URI": "sip:101@127.0.0.1:5070"}
    activity.on_ami_event({**event, "ContactStatus": "Reachable", "RoundtripUsec": "900"})
    activity.on_ami_event(
        {**event, "URI": "sip:101@127.0.0.1:5071", "ContactStatus": "NonQualified"}
    )
    assert +activity.registration_events == {"reachable": 1, "registered": 1}
    assert activity.rtt.count == 1


def test_flapping_series_come_from_the_source_each_scrape() -> None:
    flapping: dict[str, Collection[str]] = {"default": {"101", "105"}}

    def source() -> Mapping[str, Collection[str]]:
        return flapping

    registry = CollectorRegistry()
    registry.register(FlappingCollector(source))
    samples = parse(generate_latest(registry).decode())
    assert samples[("ispbx_flapping_endpoints", frozenset({"pbx": "default"}.items()))] == 2
    assert sorted(e["endpoint"] for e in named(samples, "ispbx_endpoint_flapping")) == [
        "101",
        "105",
    ]

    flapping["default"] = set()
    samples = parse(generate_latest(registry).decode())
    assert samples[("ispbx_flapping_endpoints", frozenset({"pbx": "default"}.items()))] == 0
    assert named(samples, "ispbx_endpoint_flapping") == []
