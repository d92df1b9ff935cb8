"""``python -m occparse``: the same as the ``occparse`` command."""

import sys

from .cli import main

sys.exit(main())
