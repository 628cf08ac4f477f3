"""What ``dpgkit tune`` leaves in its output directory once its trials are done:

- ``best_config.json``: the best trial's whole config (``dpgkit train --config`` takes it as it
  is; the seed is the first of the trial's seeds);
- ``trials.json``: every trial of the study: number, state, value, drawn settings, per-seed
  returns, run directory;
- ``history.png``: the optimization history: each finished trial's value against its number,
  pruned trials at their last reported value, and the best value so far as a line.

Several processes may share a study and an output directory: each file is written whole to a
temporary name and renamed, so a reader never sees half of one.
"""

import json
import math
import os
from pathlib import Path
from typing import Any

BEST_CONFIG = "best_config.json"
TRIALS = "trials.json"
HISTORY = "history.png"


def _write_atomically(path: Path, text: str | None = None, figure: Any = None) -> None:
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    if figure is not None:
        figure.savefig(temporary, dpi=110, format=path.suffix.lstrip("."))
    else:
        temporary.write_text(text or "")
    temporary.replace(path)


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """One JSON-ready row per trial of ``study``."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        intermediate = trial.intermediate_values
        last = intermediate[max(intermediate)] if intermediate else None
        rows.append({"number": trial.number, "state": trial.state.name, "value": trial.value,
                     "last_reported": last, "last_reported_step": max(intermediate, default=None),
                     "params": trial.params, "per_seed": trial.user_attrs.get("per_seed"),
                     "run_dir": trial.user_attrs.get("run_dir")})
    return rows


def plot_history(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Trial value against trial number, the best so far as a step line; pruned trials (at
    their last reported value) as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    complete = [r for r in rows if r["state"] == "COMPLETE" and _finite(r["value"])]
    pruned = [r for r in rows if r["state"] == "PRUNED" and _finite(r["last_reported"])]
    figure, axes = plt.subplots(figsize=(7, 4))
    if complete:
        numbers = [r["number"] for r in complete]
        values = [r["value"] for r in complete]
        best = [max(values[: i + 1]) for i in range(len(values))]
        axes.plot(numbers, values, "o", color="tab:blue", label="trial value")
        axes.step(numbers, best, where="post", color="tab:red", label="best so far")
    if pruned:
        axes.plot([r["number"] for r in pruned], [r["last_reported"] for r in pruned], "x",
                  color="tab:gray", label="pruned (last evaluation)")
    axes.set_xlabel("trial number")
    axes.set_ylabel("final eval return (mean over seeds)")
    axes.set_title(title)
    if complete or pruned:
        axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    _write_atomically(path, figure=figure)
    plt.close(figure)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def write_outputs(study: Any, out: Path) -> dict[str, Any]:
    """Write ``trials.json``, ``history.png`` and, once a trial has completed,
    ``best_config.json``; return a summary: the counts of trials by state and the best trial
    (``best``: None before any trial completed)."""
    rows = trial_rows(study)
    _write_atomically(out / TRIALS, json.dumps(rows, indent=2, default=str) + "\n")
    base = study.user_attrs.get("base_config", {})
    plot_history(rows, out / HISTORY, f"study {study.study_name}: {base.get('preset')} on "
                 f"{base.get('env_id')}, {base.get('total_env_steps')} env steps")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    complete = [r for r in rows if r["state"] == "COMPLETE" and _finite(r["value"])]
    best = max(complete, key=lambda r: r["value"], default=None)
    summary: dict[str, Any] = {"study_name": study.study_name, "trials": counts, "best": None}
    if best is not None:
        config = study.get_trials(deepcopy=False)[best["number"]].user_attrs["config"]
        _write_atomically(out / BEST_CONFIG, json.dumps(config, indent=2) + "\n")
        summary["best"] = {"number": best["number"], "value": best["value"],
                           "params": best["params"], "config_file": str(out / BEST_CONFIG),
                           "run_dir": best["run_dir"]}
    return summary
