"""One training process per run directory.

Two processes training the same run would both write its checkpoints and ``metrics.csv``, and
each would take the other's half-written checkpoint for a kill's leftovers: a job scheduler that
requeues a job whose first copy still runs, or a second ``dpgkit train --resume`` in another
terminal. So a process that trains a run holds it: an exclusive ``flock`` on the run directory
itself, taken before a resume reads or repairs anything and before ``--overwrite`` deletes, and
released when the training ends or its process does (a kill included: no stale lock is left, and
no file is written for it). A second process is refused with a message that says so. Reading a
run (``dpgkit eval``, ``plot``, ``export``) takes no lock. Where the OS has no ``flock``
(Windows), or the file system refuses one (NFS may, on a directory), nothing is held: the run
goes on unguarded, as before.
"""

import os
from pathlib import Path

from dpgkit.errors import DpgkitError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class RunInUse(DpgkitError):
    """Another process is training this run directory."""


class RunLock:
    """Hold ``run_dir`` (an existing directory) for this process until :meth:`release`."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.fd = run_dir, None
        if fcntl is None:
            return
        try:
            fd = os.open(run_dir, os.O_RDONLY)
        except OSError:  # a file system that will not open a directory: hold nothing
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held by another process (or another open run in this one)
            os.close(fd)
            raise RunInUse(f"{run_dir} is being trained by another process (or by another "
                           "model in this one) right now: wait for it to end, or stop it "
                           "first (Ctrl-C or kill leaves a checkpoint), then resume or "
                           "overwrite it") from None
        except OSError:  # no flock here (NFS may refuse one on a directory): hold nothing
            os.close(fd)
            return
        self.fd = fd

    @property
    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.release()


def check_not_in_use(*run_dirs: Path) -> None:
    """Refuse (:class:`RunInUse`) if a process trains one of ``run_dirs``."""
    for path in run_dirs:
        RunLock(path).release()
