"""The wrapper's parsing, decoding and validation, without a network.

Each test names the panoramisk 1.4 behaviour it guards against.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from panoramisk.manager import Manager
from panoramisk.message import Message

from ispbx.ami import AmiValueError
from ispbx.ami.client import (
    MAX_LINE_BYTES,
    _AmiManager,
    _AmiProtocol,
    _Message,
    join_headers,
    parse_line,
    validate_action,
)


class Wire:
    """An _AmiProtocol on a mock transport; collects the events it dispatches."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []
        self.lost: list[str] = []
        self.manager = _AmiManager(self.events.append, self.lost.append)
        self.protocol = _AmiProtocol(self.manager)
        self.transport = mock.Mock()
        self.protocol.connection_made(self.transport)

    def feed(self, data: bytes, *, piece: int | None = None) -> None:
        step = piece or len(data)
        for start in range(0, len(data), step):
            self.protocol.data_received(data[start : start + step])


NAME_EVENT = "Event: UserEvent\r\nName: Jörg Müller\r\n\r\n".encode()


def test_utf8_split_byte_by_byte_arrives_intact() -> None:
    # panoramisk decodes each read with errors="ignore": "Jörg Müller" -> "Jrg Mller"
    wire = Wire()
    wire.feed(NAME_EVENT, piece=1)
    assert wire.events == [{"Event": "UserEvent", "Name": "Jörg Müller"}]


def test_utf8_split_inside_o_umlaut_arrives_intact() -> None:
    wire = Wire()
    cut = NAME_EVENT.index("ö".encode()) + 1  # between the two bytes of ö
    wire.protocol.data_received(NAME_EVENT[:cut])
    wire.protocol.data_received(NAME_EVENT[cut:])
    assert wire.events[0]["Name"] == "Jörg Müller"


def test_crlf_split_across_reads() -> None:
    wire = Wire()
    data = b"Event: A\r\nX: 1\r\n\r\nEvent: B\r\n\r\n"
    cut = data.index(b"\r\n\r\n") + 1  # between \r and \n
    wire.feed(data[:cut])
    wire.feed(data[cut:])
    assert wire.events == [{"Event": "A", "X": "1"}, {"Event": "B"}]


def test_banner_is_not_a_message_and_version_is_kept() -> None:
    wire = Wire()
    wire.feed(b"Asterisk Call Manager/11.0.0\r\nEvent: FullyBooted\r\n\r\n")
    assert wire.events == [{"Event": "FullyBooted"}]
    assert wire.protocol.version == "11.0.0"


def test_repeated_keys_are_joined_with_commas() -> None:
    # panoramisk turns them into a Python list
    wire = Wire()
    wire.feed(b"Event: EndpointList\r\nContacts: 1001/sip:a\r\nContacts: 1001/sip:b\r\n\r\n")
    assert wire.events[0]["Contacts"] == "1001/sip:a,1001/sip:b"


def test_messages_are_plain_dicts_and_missing_keys_are_absent() -> None:
    # panoramisk's Message answers '' for any missing key and adds a 'content' key
    wire = Wire()
    wire.feed(b"Event: EndpointList\r\nObjectName: 1001\r\n\r\n")
    event = wire.events[0]
    assert type(event) is dict
    assert event == {"Event": "EndpointList", "ObjectName": "1001"}
    assert "Callerid" not in event
    assert all(type(value) is str for value in event.values())


def test_trailing_empty_header_is_kept() -> None:
    # panoramisk strips the whole message, so a last "Key: " loses its ": " and vanishes
    wire = Wire()
    wire.feed(b"Event: EndpointList\r\nObjectName: 1001\r\nActiveChannels: \r\n\r\n")
    assert wire.events[0]["ActiveChannels"] == ""


def test_trailing_newline_in_a_value_is_stripped() -> None:
    wire = Wire()
    wire.feed(b"Event: X\r\nMessage: Unable to retrieve endpoint 9\n\r\n\r\n")
    assert wire.events == [{"Event": "X", "Message": "Unable to retrieve endpoint 9"}]


def test_parse_line_and_join_headers() -> None:
    assert parse_line("URI: sip:1001@10.0.0.1:5060") == ("URI", "sip:1001@10.0.0.1:5060")
    assert parse_line("Key: ") == ("Key", "")
    assert parse_line("no colon here") is None
    assert join_headers([("A", "1"), ("B", "2"), ("A", "3")]) == {"A": "1,3", "B": "2"}


def test_over_long_unterminated_input_closes_the_connection() -> None:
    wire = Wire()
    wire.feed(b"Event: X\r\nJunk: " + b"x" * (1024 * 1024 + 10))
    assert wire.protocol.closed
    assert wire.lost and "line too long" in wire.lost[0]


def test_manager_connection_lost_does_not_schedule_a_reconnect() -> None:
    # panoramisk: loop.call_later(int(reconnect_timeout), self.connect) and call_soon(hook)
    lost: list[str] = []
    manager = _AmiManager(lambda _event: None, lost.append)
    manager.loop = mock.Mock()
    manager.connection_lost(None)
    assert manager.loop.mock_calls == []
    assert lost == ["connection closed by peer"]
    assert isinstance(manager, Manager)


def test_manager_does_not_resend_actions_after_fully_booted() -> None:
    manager = _AmiManager(lambda _event: None, lambda _reason: None)
    assert manager.callbacks == {}
    assert manager.patterns == []


def test_shutdown_event_closes_and_reports() -> None:
    wire = Wire()
    wire.feed(b"Event: Shutdown\r\nShutdown: Uncleanly\r\nRestart: True\r\n\r\n")
    assert wire.protocol.closed
    assert wire.lost == ["Asterisk shut down"]
    wire.transport.close.assert_called_once()


# -- validation ---------------------------------------------------------------------------------

BAD_CHARS = ["\r", "\n", "\0", "\r\n\r\nAction: Originate"]


@pytest.mark.parametrize("bad", BAD_CHARS)
def test_control_characters_in_values_are_refused(bad: str) -> None:
    with pytest.raises(AmiValueError, match="CR, LF or NUL"):
        validate_action({"Action": "PJSIPShowEndpoint", "Endpoint": f"1001{bad}"})


@pytest.mark.parametrize(
    "key", ["", "Bad Key", "Bad:Key", "Bad\rKey", "Bad\nKey", "Bad\0Key", "Endpoint\r\n"]
)
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(AmiValueError):
        validate_action({"Action": "Ping", key: "x"})


def test_line_length_limit_counts_utf8_bytes_and_crlf() -> None:
    room = MAX_LINE_BYTES - len("Variable: \r\n")
    validate_action({"Action": "Ping", "Variable": "x" * room})
    with pytest.raises(AmiValueError, match="bytes"):
        validate_action({"Action": "Ping", "Variable": "x" * (room + 1)})
    with pytest.raises(AmiValueError, match="bytes"):
        validate_action({"Action": "Ping", "Variable": "ö" * (room // 2 + 1)})


@pytest.mark.parametrize(
    "action",
    [
        {"Endpoint": "1001"},  # no Action
        {"Action": "Ping", "ActionID": "mine"},  # ActionID belongs to the client
        {"Action": "Ping", "action": "Ping"},  # duplicate (Asterisk keys are case-insensitive)
        {"Action": "Ping", "Value": 5},  # not a string
        {"Action": "Ping", "Value": "\udcff"},  # lone surrogate: not encodable
        {"Action": "Ping", **{f"K{i}": "v" for i in range(128)}},  # > 128 headers
    ],
)
def test_other_unsafe_actions_are_refused(action: dict[str, Any]) -> None:
    with pytest.raises(AmiValueError):
        validate_action(action)


def test_amivalueerror_is_a_valueerror() -> None:
    assert issubclass(AmiValueError, ValueError)


@pytest.mark.parametrize(
    "plain",
    [
        {"Response": "Success", "ActionID": "a-1", "EventList": "start"},
        {"Event": "EndpointDetail", "ActionID": "a-2", "ObjectName": "101", "CallerID": "Jörg"},
        {"Event": "FullyBooted", "Privilege": "system,all", "Content": "kept in plain"},
        {"Event": "X", "CommandID": "c-3", "actionid": "lower-case key"},
    ],
)
def test_a_message_reads_as_panoramisk_would_build_it(plain: dict[str, str]) -> None:
    ours, theirs = _Message(plain), Message(plain)
    assert ours._store == theirs._store
    assert (ours.id, ours.action_id, ours.success) == (theirs.id, theirs.action_id, theirs.success)
    assert ("event" in ours) == ("event" in theirs)
    assert ours.plain is plain
