"""Errors that dpgkit reports to the user as one line, without a traceback.

Every problem caused by input (a config value, an environment, a checkpoint, a path) is raised as a
:class:`DpgkitError` whose message names what is wrong and how to fix it. The CLI prints it as
``dpgkit: error: <message>`` and exits with status 2.
"""

from pathlib import Path


class DpgkitError(Exception):
    """Bad input: the message says what is wrong and what to do about it."""


class ConfigError(DpgkitError, ValueError):
    """A config value is out of range or of the wrong type."""


class EnvError(DpgkitError):
    """The environment cannot be made, or dpgkit cannot act in it."""


class CheckpointError(DpgkitError):
    """A checkpoint is missing, corrupt, foreign or unsafe to load."""


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
