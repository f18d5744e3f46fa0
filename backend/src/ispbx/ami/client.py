"""One AMI connection on top of panoramisk 1.4, with its defects fixed.

panoramisk supplies the action/response bookkeeping (``Action`` with its ActionID and completion
rules, ``AMIProtocol.handle_message`` routing replies by ActionID). The subclasses below replace the
parts that are wrong for a long-lived service:

* reads are decoded with one incremental UTF-8 decoder per connection (panoramisk decodes each TCP
  read on its own with ``errors="ignore"`` and drops characters split across reads);
* messages are parsed here: repeated keys are joined with ``,``, a trailing empty header is kept,
  trailing ``\\n`` is stripped from values, and the rest of the app gets plain ``dict[str, str]``;
* every action has a timeout, keys and values are checked before anything is written;
* ``connect()`` waits for the Login reply and raises on bad credentials;
* panoramisk's reconnect loop, pinger and re-send-after-FullyBooted are switched off: pending
  actions fail with ``AmiDisconnected`` when the connection drops. Reconnecting is AmiSession's job.

``timeout`` parameters (ruff ASYNC109) are part of the API on purpose: each call has a finite
default (``action_timeout``) that a caller may override for one slow action.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager
from panoramisk.message import Message

from ispbx.listeners import Listeners

logger = logging.getLogger(__name__)

AmiMessage = dict[str, str]

MAX_LINE_BYTES = 1024  # Asterisk drops longer lines (manager.c inbuf), CRLF included
INTERN_MAX = 24  # values up to this length are interned (see parse_line)
MAX_HEADERS = 128  # Asterisk rejects messages with more headers
MAX_PENDING_CHARS = 1024 * 1024  # an unterminated line longer than this means a broken peer
CLOSE_TIMEOUT = 1.0
EMPTY_LIST_MESSAGES = frozenset(
    {"no endpoints found", "no contacts found", "no auths found", "no aors found"}
)
SUCCESS_RESPONSES = frozenset({"success", "follows", "goodbye"})
BANNER_PREFIX = "Asterisk Call Manager/"

_KEY_RE = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # printable ASCII, no space, no colon
_FORBIDDEN_CHARS = ("\r", "\n", "\0")


class AmiError(Exception):
    """Base class of every error raised by this package."""


class AmiTimeout(AmiError):
    """No reply (or no connection) within the timeout. ``answered_tcp``: the TCP connection was
    open (Asterisk's kernel accepted it) but Asterisk itself said nothing, e.g. it is hung."""

    answered_tcp = False


class AmiDisconnected(AmiError):
    """Not connected, or the connection dropped while the action was pending."""


class AmiAuthError(AmiError):
    """Asterisk refused the Login."""


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error``; ``message`` is its ``Message`` header."""

    def __init__(self, message: str, *, action: str = "", reply: AmiMessage | None = None) -> None:
        super().__init__(f"{action}: {message}" if action else message)
        self.message = message
        self.action = action
        self.reply: AmiMessage = reply if reply is not None else {}


class AmiValueError(AmiError, ValueError):
    """An action key or value that must not be sent (CR/LF/NUL, over-long line, ...)."""


# -- validation ---------------------------------------------------------------------------------


def validate_action(action: Mapping[str, str]) -> dict[str, str]:
    """Return the action as a plain dict, or raise ``AmiValueError`` if it is unsafe to send."""
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for key, value in action.items():
        _check_key(key)
        _check_value(key, value)
        if key.lower() in seen:
            raise AmiValueError(f"duplicate AMI key {key!r}")
        seen.add(key.lower())
        headers[key] = value
    if "action" not in seen:
        raise AmiValueError("AMI action has no 'Action' key")
    if "actionid" in seen:
        raise AmiValueError("ActionID is set by the client")
    if len(headers) + 1 > MAX_HEADERS:  # + the ActionID
        raise AmiValueError(f"AMI action has more than {MAX_HEADERS} headers")
    return headers


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise AmiValueError(f"invalid AMI key {key!r}")


def _check_value(key: str, value: object) -> None:
    if not isinstance(value, str):
        raise AmiValueError(f"AMI value of {key!r} is not a string")
    if any(char in value for char in _FORBIDDEN_CHARS):
        raise AmiValueError(f"AMI value of {key!r} contains CR, LF or NUL")
    try:
        size = len(f"{key}: {value}\r\n".encode())
    except UnicodeEncodeError:
        raise AmiValueError(f"AMI value of {key!r} is not valid UTF-8 text") from None
    if size > MAX_LINE_BYTES:
        raise AmiValueError(f"AMI line for {key!r} is {size} bytes (limit {MAX_LINE_BYTES})")


# -- parsing helpers ----------------------------------------------------------------------------


def join_headers(pairs: list[tuple[str, str]]) -> AmiMessage:
    """Build a message from header pairs; a repeated key's values are joined with ``,``."""
    message: AmiMessage = {}
    for key, value in pairs:
        message[key] = f"{message[key]},{value}" if key in message else value
    return message


def parse_line(line: str) -> tuple[str, str] | None:
    """Split one ``Key: Value`` line; ``None`` for a line without a colon.

    Keys and short values are interned: thousands of endpoints repeat the same ~150 header names
    and values like ``yes`` or ``transport-udp``, and sharing them halves the inventory's memory."""
    key, sep, value = line.partition(":")
    if not sep:
        return None
    value = value.removeprefix(" ").rstrip("\r\n")
    if len(value) <= INTERN_MAX:
        value = sys.intern(value)
    return sys.intern(key.strip()), value


def is_error(message: AmiMessage) -> bool:
    response = message.get("Response")
    return response is not None and response.lower() not in SUCCESS_RESPONSES


class _Message(Message):  # type: ignore[misc]
    """panoramisk's Message (for its ActionID routing) carrying our plain dict.

    Built in one pass: Message's own constructor sets its case-insensitive store key by key
    through MutableMapping.update (18 µs for a 35-field EndpointDetail, 5.7 µs this way), and
    every AMI message passes here. The store is exactly what that constructor leaves."""

    def __init__(self, plain: AmiMessage) -> None:  # no super().__init__: see above
        store = {key.lower(): (key, value) for key, value in plain.items()}
        store["content"] = ("content", "")  # Message(headers, content="") sets it last
        self._store = store
        self.manager = None
        self.plain = plain


class _Action(Action):  # type: ignore[misc]
    """An action whose caller gave up (timeout) still swallows its late reply.

    Without this the late reply would stay registered forever and late list items would be handed
    to the event listeners.
    """

    def add_message(self, message: Any) -> Any:
        if not self.future.done():
            return super().add_message(message)
        if not self.responses:
            self.responses.append(message)
            return not self.multi
        complete = str(message.get("EventList", "")).lower() == "complete"
        return complete or str(message.get("Event", "")).endswith("Complete")


# -- panoramisk subclasses ----------------------------------------------------------------------


class _AmiManager(Manager):  # type: ignore[misc]
    """The protocol's factory: hands events and connection loss to the client, nothing else.

    Manager's reconnect (``call_later(int(delay), connect)``), its pinger, its ``call_soon`` hooks
    and its re-send of pending actions after FullyBooted are all disabled here.
    """

    def __init__(
        self, on_event: Callable[[AmiMessage], None], on_lost: Callable[[str], None]
    ) -> None:
        super().__init__(encoding="utf-8", log=logger)
        self.callbacks.clear()  # drops FullyBooted -> send_awaiting_actions
        self.patterns.clear()
        self._on_event = on_event
        self._on_lost = on_lost

    def dispatch(self, event: Any) -> list[str]:
        self._on_event(event.plain)
        return []

    def connection_lost(self, exc: Any) -> None:
        self._on_lost(_lost_reason(exc))


def _lost_reason(exc: Any) -> str:
    if isinstance(exc, Message):  # panoramisk passes the Shutdown event
        return "Asterisk shut down"
    if isinstance(exc, BaseException):
        return f"connection lost: {exc}"
    return "connection closed by peer"


class _AmiProtocol(AMIProtocol):  # type: ignore[misc]
    """AMIProtocol with incremental UTF-8 decoding, our parser, and fail-fast on close."""

    def __init__(self, manager: _AmiManager) -> None:
        super().__init__()
        self._manager = manager
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""
        self._headers: list[tuple[str, str]] = []
        self._first_line = True
        self.lost = asyncio.Event()
        self.last_received = time.monotonic()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.factory = self._manager
        self.encoding = "utf-8"
        self.log = logger

    def data_received(self, data: bytes) -> None:
        self.last_received = time.monotonic()  # any traffic means Asterisk is alive
        self._text += self._decoder.decode(data)
        *lines, self._text = self._text.split("\r\n")
        for line in lines:
            if self.closed:
                return
            self._line_received(line)
        if len(self._text) > MAX_PENDING_CHARS:
            logger.warning("AMI peer sent a line over %d characters; closing", MAX_PENDING_CHARS)
            self.connection_lost(AmiError("line too long"))

    def _line_received(self, line: str) -> None:
        if self._first_line:
            self._first_line = False
            if line.startswith(BANNER_PREFIX):
                self.version = line.removeprefix(BANNER_PREFIX).strip()
                return
        if line == "":
            self._message_received()
            return
        pair = parse_line(line)
        if pair is None:
            logger.debug("ignoring AMI line without a colon: %.80r", line)
        else:
            self._headers.append(pair)

    def _message_received(self) -> None:
        if not self._headers:
            return
        plain = join_headers(self._headers)
        self._headers = []
        if "Event" not in plain and "Response" not in plain:
            logger.debug("ignoring AMI message without Event or Response: %.200r", plain)
            return
        self.handle_message(_Message(plain))

    def fail_pending(self, reason: str) -> None:
        pending = {id(action): action for action in self.responses.values()}
        self.responses.clear()
        for action in pending.values():
            if not action.future.done():
                action.future.set_exception(AmiDisconnected(reason))

    def close(self) -> None:
        self.fail_pending("connection closed")
        super().close()

    def connection_lost(self, exc: Any) -> None:
        self.fail_pending(_lost_reason(exc))
        super().connection_lost(exc)
        self.lost.set()


# -- the client ---------------------------------------------------------------------------------


class AmiClient:
    """One AMI connection: ``connect()`` (TCP + Login), actions with timeouts, events."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        connect_timeout: float = 5.0,
        action_timeout: float = 5.0,
        on_action: Callable[[str], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._secret = secret
        self.connect_timeout = connect_timeout
        self.action_timeout = action_timeout
        self.actions_sent = 0
        self._on_action = on_action  # told each action's name as it is written (AmiStats)
        self._listeners: Listeners[AmiMessage] = Listeners("AMI event")
        self._manager = _AmiManager(self._listeners.emit, self._connection_lost)
        self._protocol: _AmiProtocol | None = None
        self._logged_in = False
        self._close_reason: str | None = None
        self._closed = asyncio.Event()
        self._closed.set()  # not connected yet

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """Logged in and the connection is open."""
        return self._logged_in and self._transport_open()

    @property
    def silent_for(self) -> float:
        """Seconds since Asterisk last sent anything on this connection."""
        protocol = self._protocol
        return 0.0 if protocol is None else time.monotonic() - protocol.last_received

    @property
    def close_reason(self) -> str | None:
        """Why the last connection ended (``None`` while connected or never connected)."""
        return self._close_reason

    def _transport_open(self) -> bool:
        return self._protocol is not None and not self._protocol.closed

    # -- connect / close ------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open TCP and Login (``Events: on``) within ``connect_timeout``.

        Raises ``AmiAuthError`` (bad credentials), ``AmiTimeout``, ``AmiDisconnected`` (the peer
        closed during login) or ``OSError`` (refused, unreachable, DNS).
        """
        if self._transport_open():
            raise AmiError("already connected")
        self._logged_in = False
        self._close_reason = None
        self._closed = asyncio.Event()
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self._open()
                await self._login()
        except TimeoutError:
            tcp_open = self._transport_open()
            self.abort("connect timed out")
            error = AmiTimeout(
                f"no connection/login within {self.connect_timeout:g} s ({self.address})"
            )
            error.answered_tcp = tcp_open
            raise error from None
        except BaseException:
            self.abort("connect failed")
            raise

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: _AmiProtocol(self._manager), self.host, self.port
        )
        self._protocol = protocol

    async def _login(self) -> None:
        login = {
            "Action": "Login",
            "Username": self._username,
            "Secret": self._secret,
            "Events": "on",
        }
        reply = _first(await self._request(login, as_list=False, seconds=None))
        if is_error(reply.plain):
            raise AmiAuthError("authentication failed")
        self._logged_in = True
        logger.debug("AMI logged in to %s", self.address)

    async def close(self) -> None:
        """Close the connection; pending actions fail with ``AmiDisconnected``. Idempotent."""
        protocol = self._protocol
        if protocol is None:
            return
        self._connection_lost("closed by client")
        protocol.close()
        if protocol.lost.is_set():
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await protocol.lost.wait()
        except TimeoutError:
            protocol.transport.abort()

    def abort(self, reason: str) -> None:
        """Drop the connection at once (dead peer); pending actions fail with AmiDisconnected."""
        protocol = self._protocol
        self._connection_lost(reason)
        if protocol is not None:
            protocol.fail_pending(reason)
            protocol.close()
            protocol.transport.abort()

    async def wait_closed(self) -> None:
        """Return when the connection has dropped or been closed, for any reason."""
        await self._closed.wait()

    def _connection_lost(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self._logged_in = False
        self._close_reason = reason
        self._closed.set()
        logger.debug("AMI connection to %s ended: %s", self.address, reason)

    # -- actions ----------------------------------------------------------------------------------

    async def action(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> AmiMessage:
        """Send one action and return its single reply; ``Response: Error`` raises."""
        self._require_connected()
        reply = _first(await self._request(action, as_list=False, seconds=self._timeout(timeout)))
        message: AmiMessage = reply.plain
        if is_error(message):
            raise AmiActionError(
                message.get("Message", ""), action=action.get("Action", ""), reply=message
            )
        return message

    async def list_action(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[AmiMessage]:
        """Send a list action and return its items only (no start Response, no …Complete).

        An error reply that means "nothing to list" (``EMPTY_LIST_MESSAGES``) returns ``[]``;
        any other error raises ``AmiActionError``.
        """
        self._require_connected()
        reply = await self._request(action, as_list=None, seconds=self._timeout(timeout))
        if isinstance(reply, list):
            return [item.plain for item in reply[1:-1]]
        message: AmiMessage = reply.plain
        if not is_error(message):
            return []
        text = message.get("Message", "")
        if text.lower() in EMPTY_LIST_MESSAGES:
            return []
        raise AmiActionError(text, action=action.get("Action", ""), reply=message)

    async def ping(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Send Ping; raise ``AmiError`` unless the reply says ``Ping: Pong``."""
        reply = await self.action({"Action": "Ping"}, timeout=timeout)
        if reply.get("Ping") != "Pong":
            raise AmiError("reply to Ping has no 'Ping: Pong'")

    def _timeout(self, timeout: float | None) -> float:
        return self.action_timeout if timeout is None else timeout

    def _require_connected(self) -> None:
        if not self.connected:
            raise AmiDisconnected(f"not connected to AMI at {self.address}")

    async def _request(
        self, action: Mapping[str, str], *, as_list: bool | None, seconds: float | None
    ) -> Any:
        headers = validate_action(action)  # before anything is written
        protocol = self._protocol
        if protocol is None or protocol.closed:
            raise AmiDisconnected(f"not connected to AMI at {self.address}")
        future = protocol.send(_Action(headers), as_list=as_list)
        self.actions_sent += 1
        if self._on_action is not None:
            self._on_action(headers.get("Action") or headers.get("action", ""))
        if seconds is None:
            return await future
        try:
            async with asyncio.timeout(seconds):
                return await future
        except TimeoutError:
            name = headers.get("Action") or headers.get("action", "")
            raise AmiTimeout(f"no reply to {name} within {seconds:g} s") from None

    # -- events -----------------------------------------------------------------------------------

    def add_event_listener(self, callback: Callable[[AmiMessage], None]) -> Callable[[], None]:
        """Call ``callback`` with every event; returns a function that unsubscribes."""
        return self._listeners.add(callback)


def _first(reply: Any) -> Any:
    return reply[0] if isinstance(reply, list) else reply
