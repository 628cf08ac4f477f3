"""A run's record for the returns benchmark (benchmarks/returns.py, whose docstring describes
it): its curve, clock, timing, commits and machine, read from its run directory (or from the
record kept in the repository), and written into the repository once the run is finished."""

import json
import shlex
from pathlib import Path

import returns_jobs
from returns_jobs import Job, record_path, recorded, state
from speed_common import machine


def _eval_curve(run_dir: Path) -> tuple[list[int], list[float]]:
    import csv

    steps, values = [], []
    with (run_dir / "metrics.csv").open() as stream:
        for row in csv.DictReader(stream):
            if row.get("eval_return_mean"):
                steps.append(int(float(row["env_steps"])))
                values.append(float(row["eval_return_mean"]))
    return steps, values


def _eval_seconds(run_dir: Path, steps: list[int]) -> list[float | None] | None:
    """The training clock at each evaluation of ``steps``: dpgkit writes steps_per_second to
    TensorBoard at each evaluation, env steps over wall seconds since the run began (resumes
    included), so seconds = steps / rate. None without such events; None at a step whose event
    is missing (an evaluation at a checkpoint's step, in a run resumed before dpgkit kept it)."""
    import logging

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.ERROR)  # "out of order": a resume's purge
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    if "steps_per_second" not in events.Tags()["scalars"]:
        return None
    clock = {e.step: e.step / e.value for e in events.Scalars("steps_per_second") if e.value > 0}
    return [clock.get(step) for step in steps]


def collect(jobs: list[Job], out: Path, record: Path | None = None) -> list[dict]:
    """Every started run's curve, final return and timing (finished or not): from its record in
    the repository if it has one, else from its run directory under ``out``."""
    runs = []
    for job in jobs:
        run_dir = job.run_dir(out)
        kept = recorded(job, record)
        if kept is not None:
            runs.append(kept)
            continue
        if not (run_dir / "metrics.csv").is_file():
            continue
        steps, values = _eval_curve(run_dir)
        summary_path = run_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        starts = returns_jobs.log_starts(run_dir.with_suffix(".log"))
        runs.append({"label": job.label, "env_id": job.env_id, "seed": job.seed,
                     "budget": job.steps, "done": state(job, out) == "done",
                     "steps": steps, "eval_return": values,
                     "eval_seconds": _eval_seconds(run_dir, steps),
                     "resumed": any(how == "resume" for how, _ in starts),
                     "wall_seconds": summary.get("wall_seconds"),
                     "steps_per_second": summary.get("steps_per_second"),
                     "command": shlex.join(["dpgkit", *job.train_args(Path("OUT"))]),
                     "commit": returns_jobs.commits_of(starts), "machine": machine()})
    return runs


def add_eval_seconds(job: Job, out: Path, record: Path) -> bool:
    """Give a record written before records kept the clock (``eval_seconds``) the clock of its
    run directory, where this machine has it and its curve is the record's. Returns whether it
    wrote."""
    kept, run_dir = recorded(job, record), job.run_dir(out)
    if kept is None or kept.get("eval_seconds") or not (run_dir / "metrics.csv").is_file():
        return False
    if _eval_curve(run_dir) != (kept["steps"], kept["eval_return"]):
        return False
    clock = _eval_seconds(run_dir, kept["steps"])
    if clock is None:  # no TensorBoard clock there: the record stays as it is
        return False
    kept["eval_seconds"] = clock
    record_path(job, record).write_text(json.dumps(kept, indent=1) + "\n")
    return True


def keep_record(job: Job, out: Path, record: Path) -> None:
    """Write a finished run's record into the repository folder (see the module's docstring)."""
    run = next((r for r in collect([job], out) if r["done"]), None)
    if run is not None:
        path = record_path(job, record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run, indent=1) + "\n")
