"""``python -m dpgkit``: the ``dpgkit`` command, for when its script is not on PATH. It imports
the same modules as the command: the current directory is not importable
(:mod:`dpgkit.entry_path`, run by the package's ``__init__`` before anything else)."""

import sys

from dpgkit.cli import main

sys.exit(main())
