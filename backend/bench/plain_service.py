"""The service as ``ispbx.cli.main`` runs it, but with one of uvicorn's own HTTP protocols instead
of the guarded one (ispbx.edge): the baseline that ``make bench`` measures the edge's cost against.

    python -m bench.plain_service httptools   # uvicorn's httptools protocol, no edge limits
    python -m bench.plain_service h11         # uvicorn's h11 protocol (its 16 KB head limit)

Bench-only: the product has no switch to turn its limits off.
"""

from __future__ import annotations

import contextlib
import sys

import uvicorn

from ispbx.app import Server, create_app, end_event_streams
from ispbx.logs import configure_logging, uvicorn_log_config
from ispbx.pbx.detail import load_detail_ini
from ispbx.settings import load_settings


def main(argv: list[str]) -> int:
    http = argv[0] if argv else "httptools"
    if http not in {"httptools", "h11"}:
        print(f"plain_service: unknown protocol {http!r}", file=sys.stderr)
        return 2
    configure_logging()
    settings = load_settings()
    app = create_app(settings, load_detail_ini(settings.detail_ini))
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=uvicorn_log_config(),
        timeout_graceful_shutdown=5,
        http=http,
    )
    server = Server(config, on_exit=lambda: end_event_streams(app))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
