"""Errors that dpgkit reports to the user as one line, without a traceback.

Every problem caused by input (a config value, an environment, a checkpoint, a path) is raised as a
:class:`DpgkitError` whose message names what is wrong and how to fix it. The CLI prints it as
``dpgkit: error: <message>`` and exits with status 2.
"""

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path


class DpgkitError(Exception):
    """Bad input: the message says what is wrong and what to do about it."""


class ConfigError(DpgkitError, ValueError):
    """A config value is out of range or of the wrong type."""


class EnvError(DpgkitError):
    """The environment cannot be made, or dpgkit cannot act in it."""


class CheckpointError(DpgkitError):
    """A checkpoint is missing, corrupt, foreign or unsafe to load."""


class EnvFailed(EnvError):
    """The environment failed when called (its constructor, reset, step or close raised, or it
    returned something of the wrong form). Before a run started: exit status 2; mid-run: exit
    status 4, after a checkpoint of the last completed step where one could be written."""


class EnvFailedMidRun(EnvFailed):
    """The environment failed after the run had trained (exit status 4)."""


class WriteFailed(DpgkitError):
    """Writing a checkpoint or a run file failed (a full disk, a lost mount: any OSError); the
    partial checkpoint was removed (exit status 5)."""


class Diverged(DpgkitError):
    """A loss, a parameter, an observation or a reward became NaN or infinite (exit status 3)."""


class DpgkitWarning(UserWarning):
    """Something the user should know that does not stop the run (the CLI prints it as one line,
    ``dpgkit: warning: <message>``)."""


class Interrupted(DpgkitError):
    """SIGINT or SIGTERM stopped training after a checkpoint; exit status 128 + ``signum``."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


@contextlib.contextmanager
def memory_for(what: str, need_bytes: float, fix: str) -> Iterator[None]:
    """Turn a failed allocation inside the block (numpy's MemoryError, torch's "can't allocate
    memory") into a ConfigError: ``what`` needs ``need_bytes``, more than this machine gives,
    and ``fix`` says which flag to lower. A need beyond the machine's physical memory is refused
    before allocating (Linux would promise the memory, then kill the process when it is used).
    The replay buffer and the networks are made in one."""
    message = (f"{what} needs {need_bytes / 1e9:,.1f} GB, more memory than this machine gives: "
               f"{fix}")
    if need_bytes > physical_memory():
        raise ConfigError(message)
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and "allocate" not in str(error):
            raise
        raise ConfigError(message) from None


def physical_memory() -> float:
    """This machine's memory in bytes (infinity where the system does not say)."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return math.inf


def writable_directory(directory: Path, option: str, what: str = "") -> Path:
    """Create ``directory`` (and its parents) if needed and check that a file can be written
    in it; a DpgkitError naming ``what`` the directory is for and ``option`` (the flag that
    chose the path) otherwise."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".dpgkit-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise DpgkitError(f"cannot write {what or 'into'} {directory} ({error.strerror}): "
                          f"choose another {option}") from None
    return directory


def writable_file(path: Path, option: str) -> Path:
    """Check that the file ``path`` can be written (creating its folder); a DpgkitError naming
    ``option`` otherwise. An existing file there will be replaced."""
    if path.is_dir():
        raise DpgkitError(f"{option} {path} is a directory: give a file name")
    writable_directory(path.parent, option)
    return path
