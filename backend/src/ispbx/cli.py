"""The ``ispbx`` command (also ``python -m ispbx`` and ``backend/src/main.py``): settings →
uvicorn. A bad setting or detail ini exits 2 with one line."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import uvicorn

from ispbx.app import Server, create_app, end_event_streams
from ispbx.edge import BACKLOG, EdgeLimits, guarded_protocol
from ispbx.history.database import HistoryDatabaseError, db_main
from ispbx.history.service import check_database
from ispbx.logs import configure_logging, uvicorn_log_config
from ispbx.pbx.detail import DetailConfigError, load_detail_ini
from ispbx.security.tokens import TokenFileError, ensure_token_file
from ispbx.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    """``ispbx`` serves; ``ispbx db upgrade|downgrade|current`` manages the history schema."""
    args = list(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        settings = load_settings()
        if args[:1] == ["db"]:
            return db_main(args[1:], settings.database_url)
        fields = load_detail_ini(settings.detail_ini)  # an unknown section stops the start
        ensure_token_file(settings)  # a token file others can read stops the start
        asyncio.run(check_database(settings.database_url))  # and so does a database we can't use
    except (SettingsError, DetailConfigError, TokenFileError) as exc:
        print(f"ispbx: {exc}", file=sys.stderr)
        return 2
    except HistoryDatabaseError as exc:
        print(f"ispbx: ISPBX_DATABASE_URL: {exc}", file=sys.stderr)
        return 2
    if args:
        print(f"ispbx: unknown command {args[0]!r} (commands: db)", file=sys.stderr)
        return 2
    app = create_app(settings, fields)
    limits = EdgeLimits.from_settings(settings).fitted_to_fd_limit()
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=uvicorn_log_config(),
        timeout_graceful_shutdown=5,
        http=guarded_protocol(limits),  # head size and time, connection cap (ispbx/edge.py)
        timeout_keep_alive=limits.keepalive_timeout,
        backlog=BACKLOG,
    )
    server = Server(config, on_exit=lambda: end_event_streams(app))
    # uvicorn re-raises the captured Ctrl-C after a clean shutdown; uvicorn.run() swallows it too.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0
