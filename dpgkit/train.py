"""``train()``: one run from the terminal, with a progress bar, signals and a divergence report.

This module chooses the trainer (:class:`~dpgkit.loop.Trainer`, or the distributed learner with
``actors`` > 0), starts a new run or continues one from its newest checkpoint
(:mod:`dpgkit.resume`), and drives it step by step until its budget is reached: showing the
progress, turning SIGINT and SIGTERM into a checkpoint and a clean stop, and a NaN or infinity
into ``divergence.json`` and a one-line message. What one step does is :mod:`dpgkit.loop`'s.
"""

import signal
import threading
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dpgkit import resume, rundir, stops
from dpgkit.acting import warn_if_all_warmup
from dpgkit.checkpoint import list_checkpoints, run_of
from dpgkit.config import DDPGConfig
from dpgkit.config_dict import config_to_dict
from dpgkit.distributed import DistributedTrainer
from dpgkit.errors import Diverged, EnvFailed, WriteFailed
from dpgkit.loop import Trainer  # also dpgkit.train.Trainer, where older code imports it
from dpgkit.progress import EvaluationCounter, Pace, RateColumn
from dpgkit.runlock import RunLock
from dpgkit.target import reached_message

__all__ = ["Trainer", "resume_trainer", "train", "trainer_class"]


def trainer_class(config: DDPGConfig) -> type[Trainer]:
    """:class:`Trainer`, or with ``config.actors`` > 0 the distributed learner (it needs Ray)."""
    return Trainer if config.actors == 0 else DistributedTrainer


def resume_trainer(run_dir: Path, total_env_steps: int | None = None,
                   evaluate_pending: bool = True, torch_threads: int | None = None) -> Trainer:
    """The run in ``run_dir`` (or of the checkpoint ``run_dir`` names), continued from its newest
    usable checkpoint (optionally with a new step budget or thread count). An evaluation that a
    stop signal ended early runs first (with ``evaluate_pending``), so the run goes on as if
    never stopped."""
    run_lock = RunLock(run_of(run_dir))  # before read_run repairs anything a kill left
    try:
        config, checkpoint = resume.read_run(run_dir, total_env_steps, torch_threads)
        trainer = trainer_class(config)(config, run_lock.run_dir, checkpoint, run_lock)
    except BaseException:
        run_lock.release()
        raise
    if evaluate_pending and trainer.eval_pending:
        trainer.evaluate()
    return trainer


def train(config: DDPGConfig | None, run_dir: Path, console: Console | None = None,
          progress: bool = True, resume_steps: int | None = None,
          resume_threads: int | None = None) -> dict[str, Any]:
    """Train with ``config``, writing everything to ``run_dir``; return the summary.
    With ``config=None``, continue the run in ``run_dir`` from its newest checkpoint
    (``resume_steps`` may raise its step budget, ``resume_threads`` set torch's threads).

    ``run_dir`` is created (it must not exist, or be empty) once the environment has been checked.
    It receives ``config.json``, ``metrics.csv``, TensorBoard events, ``curve.png``,
    ``checkpoints/`` and ``summary.json`` (:mod:`dpgkit.rundir`). A progress bar shows on a
    terminal; elsewhere (or with ``progress=False``) one line is printed per evaluation. SIGINT
    and SIGTERM end the run after the current step with a checkpoint (raising
    :class:`Interrupted`); a NaN or infinity raises :class:`Diverged` and keeps the last good
    checkpoint.
    """
    console = console or Console()
    try:
        trainer = (trainer_class(config)(config, run_dir) if config is not None
                   else resume_trainer(run_dir, resume_steps, evaluate_pending=False,
                                       torch_threads=resume_threads))
    except OSError as error:  # config.json or metrics.csv on a full disk, say
        raise WriteFailed(f"cannot write {error.filename or run_dir} ({error.strerror or error})"
                          ) from None
    new_run, config, run_dir = config is not None, trainer.config, trainer.run_dir
    warn_if_all_warmup(config)  # here, not in the Trainer: an API model's budget grows by learn
    verb = "training" if trainer.env_steps == 0 else f"resuming at env step {trainer.env_steps}:"
    console.print(f"dpgkit: {verb} {config.preset} on {config.env_id} (seed {config.seed}, "
                  f"{config.total_env_steps} env steps) -> {run_dir}")
    live = progress and console.is_terminal
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=12),
                   MofNCompleteColumn(), RateColumn(),
                   TextColumn("return {task.fields[last_return]}"),
                   TextColumn("eval {task.fields[last_eval]}"), TimeElapsedColumn(),
                   TimeRemainingColumn(), console=console, disable=not live)
    task = bar.add_task(config.env_id, total=config.total_env_steps,
                        completed=trainer.env_steps, last_return="-", last_eval="-")
    trainer.eval_env = stops.StoppableEvaluation(trainer.eval_env, trainer)
    if live:  # "evaluating k/N" while an evaluation's episodes run
        trainer.eval_env = EvaluationCounter(trainer.eval_env, config.eval_episodes, lambda k, n: (
            bar.update(task, description=f"evaluating {k}/{n}"), bar.refresh()))
    previous, shown = {}, trainer.env_steps
    pace = Pace(trainer.env_steps, trainer.wall_seconds())  # the time left at the rate of now
    target_said = trainer.target_reached is not None  # said in the session that reached it
    if threading.current_thread() is threading.main_thread():  # signals reach only the main one
        previous = {s: signal.signal(s, stops.request_stop(trainer)) for s in (signal.SIGINT,
                                                                               signal.SIGTERM)}
    try:
        with bar:
            if trainer.eval_pending:  # a resume of a run stopped during an evaluation
                trainer.evaluate()
            while not trainer.budget_reached:
                events = trainer.step()
                if "episode_return" in events:
                    bar.update(task, last_return=f"{events['episode_return']:.1f}")
                if "eval_return_mean" in events:
                    bar.update(task, last_eval=f"{events['eval_return_mean']:.1f}",
                               description=config.env_id)
                    if not live:
                        said = pace.said(trainer.env_steps, trainer.wall_seconds(),
                                         0 if trainer.budget_reached
                                         else config.total_env_steps - trainer.env_steps)
                        console.print(f"step {trainer.env_steps:>8d}  eval return "
                                      f"{trainer.last_eval.mean():9.2f} +- "
                                      f"{trainer.last_eval.std():7.2f}{said}")
                    if trainer.target_reached is not None and not target_said:
                        target_said = True
                        console.print(reached_message(config.target_return,
                                                      trainer.target_reached,
                                                      config.stop_at_target))
                if trainer.env_steps // 50 > shown // 50:  # a step may add many transitions
                    shown = trainer.env_steps
                    bar.update(task, completed=trainer.env_steps)
                if trainer.stop_signal is not None and not trainer.budget_reached:
                    raise stops.stopped(trainer)
        return trainer.finish()
    except stops.EvaluationStopped as during:
        raise stops.stopped(trainer, during) from None
    except Diverged as error:
        trainer.close()
        raise Diverged(_divergence_report(trainer, str(error))) from None
    except EnvFailed as error:
        raise stops.env_failed(trainer, error, new_run) from None
    except (WriteFailed, OSError) as error:
        raise stops.write_failed(trainer, error) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _divergence_report(trainer: Trainer, what: str) -> str:
    """Write ``divergence.json`` to the run directory; return the one-line message."""
    kept = list_checkpoints(rundir.checkpoints_dir(trainer.run_dir))
    path = rundir.write_divergence(trainer.run_dir, {
        "what": what, "env_steps": trainer.env_steps, "updates": trainer.agent.updates,
        "last_losses": trainer.update_stats.pop(),
        "last_good_checkpoint": str(kept[-1]) if kept else None,
        "config": config_to_dict(trainer.config)})
    where = f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint was written yet"
    return (f"training diverged: {what}; {where}; details in {path}. Try lower learning rates "
            "or a smaller tau")
