"""Logging setup: tokens never reach the log (uvicorn's access log prints query strings)."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUERY_PARAM = re.compile(r"([?&])([^=&\s#]*)=([^&\s#]*)")
MASK = "********"


def strip_query_secrets(text: str) -> str:
    """Mask the value of every query parameter whose name, decoded as the app decodes it
    (``%74oken`` is ``token``), mentions a token; the raw spelling of the name is kept."""

    def mask(match: re.Match[str]) -> str:
        if "token" not in unquote_plus(match.group(2)).lower():
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}={MASK}"

    return QUERY_PARAM.sub(mask, text)


class QuerySecretFilter(logging.Filter):
    """Masks ``token=`` query parameters in uvicorn access log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                strip_query_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format=FORMAT)
    logging.getLogger("uvicorn.access").addFilter(QuerySecretFilter())


def uvicorn_log_config() -> dict[str, object]:
    """uvicorn's own config plus the filter, so its handlers keep the mask."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, object] = {**LOGGING_CONFIG}
    config["filters"] = {"query_secrets": {"()": QuerySecretFilter}}
    handlers = {k: dict(v) for k, v in LOGGING_CONFIG["handlers"].items()}
    handlers["access"]["filters"] = ["query_secrets"]
    config["handlers"] = handlers
    return config
