"""``python -m dpgkit``: the ``dpgkit`` command, for when its script is not on PATH."""

import sys

from dpgkit.cli import main

sys.exit(main())
