"""Tokens never reach the log: uvicorn's access log prints query strings (issue 5, item 2)."""

from __future__ import annotations

import io
import logging

import pytest

from ispbx.logs import QuerySecretFilter, strip_query_secrets, uvicorn_log_config

TOKEN = "s3cr3t-token-value-0001"  # test credential


@pytest.mark.parametrize(
    "path",
    [
        f"/events?token={TOKEN}",
        f"/events?q=1&token={TOKEN}",
        f"/events?token={TOKEN}&q=1",
        f"/events?TOKEN={TOKEN}",
        f"/events?access_token={TOKEN}",
        f"/endpoints?token={TOKEN}&token={TOKEN}",
        f"/events?%74oken={TOKEN}",  # the name percent-encoded: the app decodes it to "token"
        f"/events?q=1&%54%4F%4B%45%4E={TOKEN}",
        f"/events?tok%65n={TOKEN}&q=1",
        f"/events?refresh_token={TOKEN}",
    ],
)
def test_token_query_parameters_are_masked(path: str) -> None:
    masked = strip_query_secrets(path)
    assert TOKEN not in masked
    assert "********" in masked


def test_other_query_parameters_are_kept() -> None:
    assert strip_query_secrets("/endpoints?q=101&status=online") == "/endpoints?q=101&status=online"
    assert strip_query_secrets("/events?token=x&q=10") == "/events?token=********&q=10"


def access_record(path: str) -> logging.LogRecord:
    """A record as uvicorn.protocols.http logs it: '%s - "%s %s HTTP/%s" %d'."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5555", "GET", path, "1.1", 200),
        None,
    )


def test_filter_masks_the_path_argument_and_keeps_the_record() -> None:
    record = access_record(f"/events?token={TOKEN}")
    assert QuerySecretFilter().filter(record) is True
    message = record.getMessage()
    assert TOKEN not in message
    assert message == '127.0.0.1:5555 - "GET /events?token=******** HTTP/1.1" 200'


def test_uvicorn_log_config_filters_the_access_handler() -> None:
    """The config main.py hands to uvicorn: its access handler carries the filter."""
    from uvicorn.config import LOGGING_CONFIG

    config = uvicorn_log_config()
    handlers = config["handlers"]
    filters = config["filters"]
    assert isinstance(handlers, dict) and isinstance(filters, dict)
    assert handlers["access"]["filters"] == ["query_secrets"]
    assert filters["query_secrets"]["()"] is QuerySecretFilter
    assert "filters" not in LOGGING_CONFIG["handlers"]["access"]  # uvicorn's own dict untouched


def test_a_handler_with_the_filter_never_writes_the_token() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(QuerySecretFilter())
    logger = logging.getLogger("tests.unit.test_logs.access")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/e?token={TOKEN}", "1.1", 401
        )
    finally:
        logger.removeHandler(handler)
    assert "GET /e?token=******** HTTP/1.1" in stream.getvalue()
    assert TOKEN not in stream.getvalue()
