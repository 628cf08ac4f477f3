"""``python -m dpgkit`` imports what the ``dpgkit`` command imports.

``python -m`` puts the current directory first on ``sys.path`` (the ``dpgkit`` script does not),
so a ``.py`` file in the directory the command runs in (a run directory, say) would be imported
in place of a library module: ``numpy.py``, ``gymnasium.py``, or a ``module:Class`` env named by
a run's config. :func:`drop_current_directory` takes that entry off. ``dpgkit/__init__.py``
calls it before importing anything else, since Python imports the package before running its
``__main__``. A directory the user put on ``PYTHONPATH`` is a later entry and stays.
"""

import os
import sys


def started_with_python_m() -> bool:
    """Whether this process is ``python -m dpgkit`` (or ``-m dpgkit.<module>``)."""
    argv = list(getattr(sys, "orig_argv", []))
    if "-m" not in argv[1:]:
        return False
    module = argv[argv.index("-m", 1) + 1] if argv.index("-m", 1) + 1 < len(argv) else ""
    return module == "dpgkit" or module.startswith("dpgkit.")


def drop_current_directory() -> None:
    """Under ``python -m dpgkit``, remove the entry it added for the current directory (``''``
    or the directory's path) from the front of ``sys.path``; otherwise do nothing."""
    if not started_with_python_m() or sys.flags.safe_path or not sys.path:
        return
    if sys.path[0] == "" or os.path.abspath(sys.path[0]) == os.getcwd():
        del sys.path[0]
