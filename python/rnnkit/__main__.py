"""``python -m rnnkit``: the command line (rnnkit.cli)."""

import sys

from .cli import main

sys.exit(main())
