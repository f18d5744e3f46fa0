"""``python -m ispbx``: the service."""

import sys

from ispbx.cli import main

sys.exit(main(sys.argv[1:]))
