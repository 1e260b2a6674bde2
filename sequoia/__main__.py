"""``python -m sequoia``: the same as the ``sequoia`` command."""

import sys

from sequoia.cli import main

sys.exit(main())
