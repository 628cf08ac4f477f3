"""How a run stops early, losing nothing: a stop signal, an environment that fails, a write that
fails. Each ends in one line that names the checkpoint to continue from (:func:`train` raises
it; the CLI prints it and exits with the status of the error's class, docs/cli.md).

- **SIGINT / SIGTERM.** The first asks the run to stop. It is honoured once the current env step
  is over, or at once during an evaluation: :class:`StoppableEvaluation` ends it, unrecorded
  (``eval_pending`` in the checkpoint: a resume runs it again first, so the run still ends bit
  for bit as an uninterrupted one). A checkpoint is written, then :class:`Interrupted`. A second
  signal stops at once, without a new checkpoint.
- **The environment fails** (:class:`~dpgkit.errors.EnvFailed`, from
  :class:`~dpgkit.env_checks.CheckedEnv`): at the run's first step the new run directory is
  removed; later, a checkpoint of the last completed step is written where it can be.
- **A write fails** (any OSError: a full disk): the partial checkpoint was removed by the
  writer; the message names the last good one.
"""

import shutil
import signal
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from dpgkit import rundir
from dpgkit.checkpoint import list_checkpoints
from dpgkit.errors import DpgkitError, EnvFailed, EnvFailedMidRun, Interrupted, WriteFailed

if TYPE_CHECKING:
    from dpgkit.loop import Trainer


class EvaluationStopped(Exception):
    """A stop signal ended an evaluation before its last episode ended."""

    def __init__(self, episodes_started: int) -> None:
        super().__init__(f"evaluation stopped in its episode {episodes_started}")
        self.episodes_started = episodes_started


class StoppableEvaluation(gym.Wrapper):
    """The evaluation env of ``trainer``, ending the evaluation (EvaluationStopped) at its next
    reset or step once a stop signal has come."""

    def __init__(self, env: gym.Env, trainer: "Trainer") -> None:
        super().__init__(env)
        self.trainer, self.resets = trainer, 0

    def _check(self) -> None:
        if self.trainer.stop_signal is not None:
            episodes = self.trainer.config.eval_episodes
            raise EvaluationStopped((self.resets - 1) % episodes + 1)

    def reset(self, **kwargs: Any) -> Any:
        self.resets += 1
        self._check()
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        self._check()
        return self.env.step(action)


def newest(trainer: "Trainer") -> str:
    """The run's newest checkpoint, in words."""
    kept = list_checkpoints(rundir.checkpoints_dir(trainer.run_dir))
    return f"the newest checkpoint is {kept[-1]}" if kept else "no checkpoint was written yet"


def request_stop(trainer: "Trainer") -> Any:
    """The SIGINT/SIGTERM handler: the first signal asks the run to stop (with a checkpoint); a
    second one stops it at once. Stopping mid-step loses nothing: checkpoints are written
    atomically (a write cut short is undone) and a resume cuts metrics.csv back."""
    def handler(signum: int, frame: Any) -> None:
        if trainer.stop_signal is None:
            trainer.stop_signal = signum
            return
        raise Interrupted(f"{signal.Signals(signum).name} twice, in the middle of env step "
                          f"{trainer.env_steps}: stopped without a new checkpoint; "
                          f"{newest(trainer)}; continue with: dpgkit train --resume "
                          f"{trainer.run_dir}", signum)
    return handler


def stopped(trainer: "Trainer", during: EvaluationStopped | None = None) -> Interrupted:
    """Checkpoint the run and close it; the Interrupted to raise."""
    path = trainer.save_checkpoint()
    close_quietly(trainer)
    name = signal.Signals(trainer.stop_signal or signal.SIGINT).name
    what = "" if during is None else (
        f", during the evaluation (ended in its episode {during.episodes_started} of "
        f"{trainer.config.eval_episodes}, not recorded: the resume runs it again)")
    return Interrupted(f"{name} at env step {trainer.env_steps}{what}: checkpoint written to "
                       f"{path}; continue with: dpgkit train --resume {trainer.run_dir}",
                       trainer.stop_signal or signal.SIGINT)


def env_failed(trainer: "Trainer", error: EnvFailed, new_run: bool) -> EnvFailed:
    """The error to raise for an env that failed mid-run: a new run that failed at its first
    step leaves no run directory (EnvFailed, exit 2); otherwise the last completed step is
    checkpointed where it can be (EnvFailedMidRun, exit 4)."""
    if new_run and trainer.env_steps == 0:
        close_quietly(trainer)
        shutil.rmtree(trainer.run_dir, ignore_errors=True)  # it holds nothing trained yet
        return EnvFailed(f"{error}, at the run's first env step (no run directory was left)")
    at = (f"in the evaluation at env step {trainer.env_steps}" if trainer.eval_pending
          else f"at env step {trainer.env_steps + trainer.config.num_envs}")
    if not getattr(error, "consistent", True):
        saved = (f"no checkpoint of env step {trainer.env_steps} could be written (its other "
                 f"envs had stepped); {newest(trainer)}")
    else:
        try:
            saved = f"checkpoint of env step {trainer.env_steps} written to " \
                    f"{trainer.save_checkpoint()}"
        except (DpgkitError, OSError) as failure:
            saved = f"no checkpoint could be written ({failure}); {newest(trainer)}"
    close_quietly(trainer)
    return EnvFailedMidRun(f"{error}, {at}; {saved}; once the env is fixed, continue with: "
                           f"dpgkit train --resume {trainer.run_dir}")


def write_failed(trainer: "Trainer", error: OSError | WriteFailed) -> WriteFailed:
    """The one line for a write that failed (exit 5)."""
    close_quietly(trainer)
    if isinstance(error, WriteFailed):
        what = str(error)
    else:
        where = error.filename or trainer.run_dir
        what = f"cannot write {where} ({error.strerror or error}); {newest(trainer)}"
    return WriteFailed(f"{what}; once there is room, continue with: dpgkit train --resume "
                       f"{trainer.run_dir}")


def close_quietly(trainer: "Trainer") -> None:
    """Close the run's files and envs; a failure to (a full disk, a broken env) changes nothing
    of what is to be reported."""
    try:
        trainer.close()
    except Exception:  # noqa: BLE001  (already failing: the first error is the one to report)
        pass

