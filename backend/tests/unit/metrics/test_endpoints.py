"""The per-endpoint lines: valid text format for any endpoint name, updated only from the change
stream, and gone with a deleted endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from ispbx.ami import AmiMessage
from ispbx.metrics.endpoints import EndpointSeries, render_families, slowest_roundtrip
from tests.unit.metrics.rig import named, parse, value


@dataclass
class Inventory:
    states: dict[str, str] = field(default_factory=dict)
    contacts_of: dict[str, list[AmiMessage]] = field(default_factory=dict)
    outbound: dict[str, str] = field(default_factory=dict)
    lookups: int = 0

    def endpoint_names(self) -> list[str]:
        return list(self.states)

    def has(self, name: str) -> bool:
        return name in self.states

    def device_state(self, name: str) -> str:
        self.lookups += 1
        return self.states.get(name, "Unknown")

    def contacts(self, name: str) -> list[AmiMessage]:
        return list(self.contacts_of.get(name, []))

    def listing(self, name: str) -> AmiMessage | None:
        return {"ObjectName": name, "OutboundAuths": self.outbound.get(name, "")}


def scrape(series: EndpointSeries, inventory: Inventory) -> str:
    return render_families([series.render(inventory)]).decode()


def test_names_with_quotes_backslashes_and_line_feeds_stay_valid_text() -> None:
    odd = 'a"b\\c\nd ünï'
    inventory = Inventory(states={odd: "Not in use", "101": "Unavailable"})
    samples = parse(scrape(EndpointSeries('pbx "one"'), inventory))
    key = ("ispbx_endpoint_up", frozenset({"pbx": 'pbx "one"', "endpoint": odd}.items()))
    assert samples[key] == 1


def test_only_endpoints_named_by_the_change_stream_are_looked_up_again() -> None:
    inventory = Inventory(states={str(n): "Unavailable" for n in range(100, 110)})
    series = EndpointSeries("default")
    scrape(series, inventory)
    first = inventory.lookups
    assert first == 10
    scrape(series, inventory)
    assert inventory.lookups == first  # nothing changed, nothing looked up

    inventory.states["105"] = "In use"
    series.endpoints_changed({"105"})
    samples = parse(scrape(series, inventory))
    assert inventory.lookups == first + 1
    assert value(samples, "ispbx_endpoint_up", endpoint="105") == 1
    assert value(samples, "ispbx_endpoints", status="online") == 1
    assert [e["endpoint"] for e in named(samples, "ispbx_endpoint_up")] == [
        str(n) for n in range(100, 110)
    ]


def test_a_sync_rebuilds_the_lines_and_drops_deleted_endpoints() -> None:
    inventory = Inventory(states={"101": "Not in use", "102": "Not in use"}, outbound={"102": "t"})
    series = EndpointSeries("default")
    scrape(series, inventory)
    del inventory.states["102"]
    series.endpoints_changed(None)
    samples = parse(scrape(series, inventory))
    for family in ("ispbx_endpoint_up", "ispbx_endpoint_device_state", "ispbx_endpoint_trunk"):
        assert "102" not in {e["endpoint"] for e in named(samples, family)}, family
    assert value(samples, "ispbx_endpoints", status="online") == 1


def test_an_endpoint_named_as_changed_but_gone_loses_its_lines() -> None:
    inventory = Inventory(states={"101": "Not in use", "102": "Not in use"})
    series = EndpointSeries("default")
    scrape(series, inventory)
    del inventory.states["101"]
    series.endpoints_changed({"101"})
    samples = parse(scrape(series, inventory))
    assert [e["endpoint"] for e in named(samples, "ispbx_endpoint_up")] == ["102"]


def test_the_slowest_qualified_contact_gives_the_endpoint_rtt() -> None:
    contacts = [
        {"RoundtripUsec": "1200"},
        {"RoundtripUsec": "N/A"},
        {"RoundtripUsec": "48000"},
        {"RoundtripUsec": "0"},
        {"RoundtripUsec": "²"},
    ]
    assert slowest_roundtrip(contacts) == 0.048
    assert slowest_roundtrip([{"RoundtripUsec": "N/A"}, {}]) is None


def test_every_family_is_written_once_for_several_pbxes() -> None:
    one, two = EndpointSeries("one"), EndpointSeries("two")
    text = render_families(
        [
            one.render(Inventory(states={"101": "Busy"})),
            two.render(Inventory(states={"101": "Busy"})),
        ]
    ).decode()
    assert text.count("# TYPE ispbx_endpoint_up gauge") == 1
    samples = parse(text)
    for pbx in ("one", "two"):
        key = ("ispbx_endpoint_up", frozenset({"pbx": pbx, "endpoint": "101"}.items()))
        assert samples[key] == 1
