"""Entry point: ``cd backend && python src/main.py`` (inside the venv) starts the service, as the
``ispbx`` command and ``python -m ispbx`` do."""

from __future__ import annotations

import sys

from ispbx.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
