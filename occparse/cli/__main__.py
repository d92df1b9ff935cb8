"""``python -m occparse.cli``: the same as the ``occparse`` command."""

import sys

from . import main

sys.exit(main())
