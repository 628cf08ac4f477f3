"""Returns benchmark: train presets on tasks for several seeds, resumably, then table dpgkit's
evaluation returns beside TD3's published curve at the same step, and draw them in one figure.

    python benchmarks/returns.py --suite mujoco --workers 2 --out /work/bench-returns
    python benchmarks/returns.py --suite mujoco --out /work/bench-returns --table-only
    python benchmarks/returns.py --presets td3 --envs Hopper-v5 --seeds 0-2 --steps 100000 \\
        --out /tmp/hopper --workers 2     # any other set of runs

Every run is one ``dpgkit train`` process into ``OUT/runs/<label>/<env>/seed<N>``. Run again
with the same arguments, the benchmark skips finished runs, continues each unfinished one from
its newest checkpoint with ``dpgkit train --resume`` (an interruption loses at most
``--checkpoint_every`` env steps) and starts the rest, ``--workers`` processes at a time. After
every run and at the end it writes ``OUT/results.md`` (the table, with each row's command,
and when each run first reached TD3's published return),
``OUT/results.png`` (a panel per task: mean +- std over seeds, TD3's published curve) and
``OUT/curves.json`` (every run's evaluation curve, enough to redraw the figure).

A finished run also leaves a record, ``RECORD/runs/<label>/<env>/seed<N>-<steps>steps.json``
(its curve, wall time, steps/s, the commit that trained it and the machine): a few kilobytes,
committed to the repository (``--record``: with ``--suite``, ``bench/returns`` of this
checkout, else OUT). The table, figure and curves are written beside the records. A run with
a record counts as done on any machine, so a suite spread over sittings on machines that come
and go loses only the unfinished runs of the machine that went, never a finished one.
"""

import argparse
import fcntl
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpgkit.reference import TD3_CURVE_STDS, TD3_CURVES, WARMUP_STEPS, published_at, task_name

LOCOMOTION = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5")
SMALL = ("InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Reacher-v5")
EVAL = ["--eval_every", "5000", "--eval_episodes", "10"]  # as the TD3 and TD7 papers evaluate
TD3_PAPER_PRESETS = ("td3", "our-ddpg")  # their warm-up: 10,000 steps on HalfCheetah, Ant


@dataclass(frozen=True)
class Job:
    """One run: ``label`` names the preset and any flags on top of it (a column of the table)."""

    label: str
    preset: str
    env_id: str
    seed: int
    steps: int
    flags: tuple[str, ...] = ()

    def run_dir(self, out: Path) -> Path:
        return out / "runs" / self.label / self.env_id / f"seed{self.seed}"

    def train_args(self, out: Path) -> list[str]:
        """``dpgkit train`` arguments that start this run: for the presets of the TD3 paper
        (td3, our-ddpg), Fujimoto et al. 2018's warm-up per task; td7 keeps its preset's (the
        TD7 authors' 25,000 steps on every task)."""
        warmup = []
        if self.preset in TD3_PAPER_PRESETS:
            warmup = ["--warmup_steps", str(WARMUP_STEPS.get(task_name(self.env_id), 1_000))]
        return ["train", "--preset", self.preset, "--env", self.env_id, "--seed", str(self.seed),
                "--steps", str(self.steps), *warmup, *EVAL, *self.flags,
                "--out", str(self.run_dir(out)), "--no-progress"]


def mujoco_suite() -> list[Job]:
    """Issues 15 and 19's suite, in the order it runs: the our-ddpg warm-up question on
    HalfCheetah (seed 0 of each variant, side by side; the label ``our-ddpg`` is the TD3
    authors' schedule, updates during the warm-up, whatever the preset's default), td3 on the
    short tasks (and InvertedDoublePendulum's seed 0 without updates during the warm-up, whose
    actor saturated with them: benchmarks/actor_saturation.py), td3's first seed of each
    locomotion task (so a partial benchmark already has every task) with a first look at td7
    on HalfCheetah at 100k among them (a 300k td7 run takes about 4 hours of a core, 2.5 of
    two: more than a sitting), the warm-up question on Walker2d, td3's other seeds, then td7
    beside td3 at the same budget, seed by seed."""
    def ddpg_pair(env: str) -> list[Job]:
        return [Job("our-ddpg", "our-ddpg", env, 0, 300_000, ("--update_during_warmup", "true")),
                Job("our-ddpg-no-warmup-updates", "our-ddpg", env, 0, 300_000,
                    ("--update_during_warmup", "false"))]

    def locomotion(preset: str, seeds: range) -> list[Job]:
        return [Job(preset, preset, env, seed, 300_000) for seed in seeds for env in LOCOMOTION]

    jobs = ddpg_pair("HalfCheetah-v5")
    jobs += [Job("td3", "td3", env, seed, 100_000) for env in SMALL for seed in range(3)]
    jobs += [Job("td3-no-warmup-updates", "td3", "InvertedDoublePendulum-v5", 0, 100_000,
                 ("--update_during_warmup", "false"))]  # seed 0's actor saturated with them
    first_td3 = locomotion("td3", range(1))
    jobs += first_td3[:2] + [Job("td7", "td7", "HalfCheetah-v5", 0, 100_000)] + first_td3[2:]
    jobs += ddpg_pair("Walker2d-v5") + locomotion("td3", range(1, 3))
    return jobs + locomotion("td7", range(3))


SUITES = {"mujoco": mujoco_suite}


def parse_seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1)) if "," not in text else [
        int(s) for s in text.split(",")]


def record_path(job: Job, record: Path) -> Path:
    return record / "runs" / job.label / job.env_id / f"seed{job.seed}-{job.steps}steps.json"


def recorded(job: Job, record: Path | None) -> dict | None:
    """The finished run's record kept in the repository, if there is one for this budget."""
    path = None if record is None else record_path(job, record)
    if path is None or not path.is_file():
        return None
    run = json.loads(path.read_text())
    return run if run["budget"] == job.steps and run["done"] else None


def state(job: Job, out: Path, record: Path | None = None) -> str:
    """done, resume (a checkpoint to continue from), restart (started, no checkpoint) or new."""
    if recorded(job, record) is not None:
        return "done"
    run_dir = job.run_dir(out)
    summary = run_dir / "summary.json"
    if summary.is_file() and json.loads(summary.read_text())["env_steps"] >= job.steps:
        return "done"
    if any((run_dir / "checkpoints").glob("step-*/checkpoint.json")):
        return "resume"
    return "restart" if run_dir.exists() else "new"


def command(job: Job, out: Path, threads: int = 1) -> list[str]:
    """The command that takes ``job`` one step nearer done from where it stands. ``threads``
    (torch's, this benchmark's share of the cores for each run) applies to a run it starts and
    to one it resumes, whatever that run had before."""
    how = state(job, out)
    if how == "resume":
        args = ["train", "--resume", str(job.run_dir(out)), "--steps", str(job.steps),
                "--torch_threads", str(threads), "--no-progress"]
    else:
        args = job.train_args(out) + (["--overwrite"] if how == "restart" else [])
        args += ["--torch_threads", str(threads)] if threads != 1 else []
    return [sys.executable, "-m", "dpgkit", *args]


def run(job: Job, out: Path, threads: int = 1) -> tuple[Job, int, str]:
    """Run (or continue) one job; its output goes to ``<run dir>.log``, which stays locked while
    it runs, so a second benchmark on the same folder skips it instead of running it twice.
    Each start or resume writes a line there with the commit that runs it."""
    log = job.run_dir(out).with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as stream:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return job, 0, "running elsewhere"
        how, cmd = state(job, out), command(job, out, threads)
        stream.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {how} at {_commit()}: "
                     f"{shlex.join(cmd)}\n")
        stream.flush()
        code = subprocess.run(cmd, stdout=stream, stderr=subprocess.STDOUT,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)}).returncode
    return job, code, how


def _starts(log: Path) -> list[tuple[str, str]]:
    """(how, commit) of each start or resume line of a run's log, ``# DATE TIME HOW at COMMIT:``
    (commit "" in the lines written before the log named commits: ``# DATE TIME HOW:``)."""
    text = log.read_text() if log.is_file() else ""
    return re.findall(r"^# \S+ \S+ (\w+)(?: at (\S+))?: ", text, flags=re.MULTILINE)


def _commits(starts: list[tuple[str, str]]) -> str:
    """The commits that ran a run (its log's :func:`_starts`), else this checkout's."""
    return ", ".join(dict.fromkeys(commit for _, commit in starts if commit)) or _commit()


# --- results -------------------------------------------------------------------------------

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


def _commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=Path(__file__).parent).stdout.strip() or "unknown"


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
        starts = _starts(run_dir.with_suffix(".log"))
        runs.append({"label": job.label, "env_id": job.env_id, "seed": job.seed,
                     "budget": job.steps, "done": state(job, out) == "done",
                     "steps": steps, "eval_return": values,
                     "eval_seconds": _eval_seconds(run_dir, steps),
                     "resumed": any(how == "resume" for how, _ in starts),
                     "wall_seconds": summary.get("wall_seconds"),
                     "steps_per_second": summary.get("steps_per_second"),
                     "command": shlex.join(["dpgkit", *job.train_args(Path("OUT"))]),
                     "commit": _commits(starts), "machine": machine()})
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


def _fmt(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"


def machine() -> str:
    """The CPU's model name, core count and its widest vector extension, from /proc/cpuinfo."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.machine()}, {os.cpu_count()} cores"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines()
                  if line.startswith("flags")), [])
    isa = next((name for name, flag in (("AMX", "amx_tile"), ("AVX-512 BF16", "avx512_bf16"),
                                        ("AVX-512", "avx512f"), ("AVX2", "avx2"))
                if flag in flags), "no AVX2")
    return f"{model}, {os.cpu_count()} cores, {isa}"


def _short(machine_name: str) -> str:
    """'Intel(R) Xeon(R) Processor, 2 cores, AMX' -> 'Intel Xeon, AMX'."""
    model, _, rest = machine_name.partition(",")
    model = " ".join(model.replace("(R)", "").replace("(TM)", "").split()[:2])
    return f"{model}, {rest.rsplit(',', 1)[-1].strip()}" if rest else model


def _groups(runs: list[dict]) -> dict[tuple[str, str, int], list[dict]]:
    """The runs by (label, env, budget), in the order they come."""
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["label"], r["env_id"], r["budget"]), []).append(r)
    return groups


def table(runs: list[dict], commit: str) -> str:
    """The markdown table: a row per (label, env, budget) with the finished seeds' final
    evaluations."""
    groups = _groups(runs)
    lines = ["| preset (label) | task | env steps | seeds done | dpgkit final eval, mean +- std "
             "| per seed | TD3 published at that step (mean +- seed std) | ratio | at or above "
             "published mean - std | wall s per run | steps/s per run | machine |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (label, env_id, budget), group in groups.items():
        done = [r for r in group if r["done"]]
        finals = [r["eval_return"][-1] for r in done if r["eval_return"]]
        pub = published_at(task_name(env_id), budget)
        mean = float(np.mean(finals)) if finals else None
        lines.append(
            f"| {label} | {env_id} | {budget:,} | {len(done)}/{len(group)} started | "
            + (f"{_fmt(mean)} +- {_fmt(float(np.std(finals)))}" if finals else "-") + " | "
            + (", ".join(_fmt(v) for v in finals) or "-") + " | "
            + (f"{_fmt(pub[0])} +- {_fmt(pub[1])}" if pub else "-") + " | "
            + (f"{mean / pub[0]:.2f}" if pub and finals and pub[0] > 0 else "-") + " | "
            + (("yes" if mean >= pub[0] - pub[1] else "**no**") if pub and finals else "-") + " | "
            + (", ".join(f"{r['wall_seconds']:.0f}" for r in done) or "-") + " | "
            + (", ".join(f"{r['steps_per_second']:.0f}" for r in done) or "-") + " | "
            + (", ".join(dict.fromkeys(_short(r.get("machine", "?")) for r in done)) or "-")
            + " |")
    lines.append("")
    lines.append(f"Tabled at commit {commit}. Ratio: dpgkit's mean over TD3's published mean. "
                 "Wall time is training time summed over a run's processes (resumes included); "
                 "steps/s depend on the machine each run had (its last column; the runs' "
                 "records name the CPU and the commit that trained them).")
    lines.append("")
    lines.append("Each row's command (OUT is the benchmark's output folder):")
    lines.append("")
    seen = set()
    for r in runs:
        key = (r["label"], r["env_id"])
        if key not in seen:
            seen.add(key)
            lines.append(f"- {r['label']} / {r['env_id']}: `"
                         + r["command"].replace(f"--seed {r['seed']}", "--seed S")
                         .replace(f"seed{r['seed']}", "seedS") + "`")
    return "\n".join(lines) + "\n"


REACH_HEADING = "## Time to TD3's published return"


def first_reached(steps: list[int], values: list[float], target: float) -> int | None:
    """The env step of the first evaluation at or above ``target``, or None."""
    return next((step for step, value in zip(steps, values, strict=True) if value >= target),
                None)


def reach_table(runs: list[dict]) -> str:
    """When each finished run's evaluation first reached TD3's published mean at the longest
    budget its task has here (300k on the locomotion tasks): the env steps, and the wall
    seconds of the run's clock at that evaluation (estimated at the run's mean rate, marked
    '~', for a record that has no clock)."""
    longest: dict[str, int] = {}
    for r in runs:
        longest[r["env_id"]] = max(longest.get(r["env_id"], 0), r["budget"])
    lines = [REACH_HEADING, "",
             "| preset (label) | task | run's env steps | target: TD3 published mean at | env "
             "steps to reach it, per seed | mean over seeds that reached | wall s to reach it, "
             "per seed (~: at the run's mean rate) |",
             "|---|---|---|---|---|---|---|"]
    for (label, env_id, budget), group in _groups(runs).items():
        done = [r for r in group if r["done"] and r["eval_return"]]
        pub = published_at(task_name(env_id), longest[env_id])
        if not done or pub is None:
            continue
        reached = [first_reached(r["steps"], r["eval_return"], pub[0]) for r in done]
        hits = [step for step in reached if step is not None]
        lines.append(
            f"| {label} | {env_id} | {budget:,} | {_fmt(pub[0])} at {longest[env_id]:,} | "
            + ", ".join("not reached" if step is None else f"{step:,}" for step in reached)
            + " | " + (f"{np.mean(hits):,.0f} ({len(hits)}/{len(done)})" if hits else "-")
            + " | " + ", ".join(_seconds_at(r, step) for r, step in zip(done, reached,
                                                                        strict=True)) + " |")
    return "\n".join(lines) + "\n"


def _seconds_at(run: dict, step: int | None) -> str:
    """The run's clock at its evaluation at ``step``; '~' before an estimate at the run's mean
    rate (a record without the clock); '-' if not reached."""
    if step is None:
        return "-"
    clock = run.get("eval_seconds") or [None] * len(run["steps"])
    seconds = clock[run["steps"].index(step)]
    if seconds is not None:
        return f"{seconds:,.0f}"
    return f"~{step / run['budget'] * run['wall_seconds']:,.0f}" if run["wall_seconds"] else "-"


def figure(runs: list[dict], path: Path) -> None:
    """A panel per task: each label's mean +- std over seeds, TD3's published curve dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(r["env_id"] for r in runs))
    if not envs:
        return
    cols = min(4, len(envs))
    rows = (len(envs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), dpi=110,
                             squeeze=False)
    for ax, env_id in zip(axes.flat, envs, strict=False):
        group = [r for r in runs if r["env_id"] == env_id and r["steps"]]
        budget = max(r["budget"] for r in runs if r["env_id"] == env_id)
        for label in dict.fromkeys(r["label"] for r in group):
            started = [r for r in group if r["label"] == label]
            curves = [r for r in started if r["done"]] or started  # unfinished ones only alone
            end = min(max(r["steps"]) for r in curves)
            x = np.array([s for s in curves[0]["steps"] if s <= end]) if len(curves) > 1 else \
                np.array(curves[0]["steps"])
            ys = np.array([np.interp(x, r["steps"], r["eval_return"]) for r in curves])
            (line,) = ax.plot(x, ys.mean(0), lw=1.6, label=f"{label} (n={len(curves)})")
            if len(curves) > 1:
                ax.fill_between(x, ys.mean(0) - ys.std(0), ys.mean(0) + ys.std(0),
                                color=line.get_color(), alpha=0.2)
        task = task_name(env_id)
        if task in TD3_CURVES:
            steps = [s for s in TD3_CURVES[task] if s <= budget]
            mean = np.array([TD3_CURVES[task][s] for s in steps])
            std = np.array([TD3_CURVE_STDS[task][s] for s in steps])
            ax.plot(steps, mean, "k--", lw=1, label="TD3 published (v1, 10 seeds)")
            ax.fill_between(steps, mean - std, mean + std, color="k", alpha=0.07)
        ax.set_title(env_id, fontsize=10)
        ax.set_xlabel("env steps", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(envs):]:
        ax.axis("off")
    fig.suptitle("evaluation return (10 episodes, no noise): mean +- std over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_results(jobs: list[Job], out: Path, record: Path | None = None) -> str:
    """The table, the figure and every curve, from the records and the run directories, into
    ``record`` (the committed copy) if given, else into ``out``."""
    commit = _commit()
    runs = collect(jobs, out, record)
    returns, reach = table(runs, commit), reach_table(runs)
    into = out if record is None else record
    into.mkdir(parents=True, exist_ok=True)
    (into / "results.md").write_text(f"{returns}\n{reach}")
    (into / "curves.json").write_text(json.dumps({"commit": commit, "runs": runs}) + "\n")
    figure(runs, into / "results.png")
    doc = into.parent.parent / "docs" / "results.md"
    embed_table(returns, doc)
    embed_table(reach, doc, REACH_MARKERS)
    return f"{returns}\n{reach}"


TABLE_START, TABLE_END = "<!-- returns table: start -->", "<!-- returns table: end -->"
"""The markers between which docs/results.md holds the benchmark's table."""
REACH_MARKERS = ("<!-- time to target: start -->", "<!-- time to target: end -->")
"""The markers of the time-to-published-return table (:func:`reach_table`)."""


def embed_table(text: str, doc: Path, markers: tuple[str, str] = (TABLE_START, TABLE_END)
                ) -> bool:
    """Put the table rows of ``text`` (its lines that start with '|') between ``markers`` in
    ``doc`` (docs/results.md, for a record folder in this repository); a document without both
    markers is left alone. Returns whether it wrote."""
    start, end = markers
    if not doc.is_file():
        return False
    current = doc.read_text()
    if start not in current or end not in current:
        return False
    rows = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    head, rest = current.split(start, 1)
    doc.write_text(f"{head}{start}\n{rows}\n{end}{rest.split(end, 1)[1]}")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default=None,
                        help="a named set of runs (else --presets, --envs, --seeds, --steps)")
    parser.add_argument("--presets", default="td3")
    parser.add_argument("--envs", default="HalfCheetah-v5")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of each run it starts (workers x threads <= cores)")
    parser.add_argument("--out", type=Path, required=True,
                        help="the working folder: run directories with their checkpoints")
    parser.add_argument("--record", type=Path, default=None,
                        help="where finished runs' records, the table and the figure go "
                        "(default: bench/returns with --suite, else OUT)")
    parser.add_argument("--only", default=None,
                        help="run only jobs whose label/env contains this text")
    parser.add_argument("--table-only", action="store_true", help="only table the runs there")
    args = parser.parse_args()
    if args.suite:
        jobs = SUITES[args.suite]()
    else:
        jobs = [Job(p, p, e, s, args.steps) for e in args.envs.split(",")
                for p in args.presets.split(",") for s in parse_seeds(args.seeds)]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.record is None:
        args.record = Path(__file__).parent.parent / "bench" / "returns" if args.suite else args.out
    for job in jobs:  # runs finished by an earlier driver, or by hand, get their records too
        if recorded(job, args.record) is None and state(job, args.out) == "done":
            keep_record(job, args.out, args.record)
        add_eval_seconds(job, args.out, args.record)
    if not args.table_only:
        finished = [state(j, args.out, args.record) == "done" for j in jobs]
        todo = [j for j, over in zip(jobs, finished, strict=True) if not over
                and (args.only is None or args.only in f"{j.label}/{j.env_id}")]
        done = sum(finished)
        only = f" (those matching --only {args.only})" if args.only else ""
        print(f"{done} of {len(jobs)} runs done; running {len(todo)}{only} with "
              f"{args.workers} worker(s)", flush=True)
        with ThreadPoolExecutor(args.workers) as pool:
            futures = [pool.submit(run, job, args.out, args.threads) for job in todo]
            for future in as_completed(futures):
                job, code, how = future.result()
                print(f"{time.strftime('%H:%M:%S')} {job.label} {job.env_id} seed {job.seed} "
                      f"({how}): exit {code}", flush=True)
                keep_record(job, args.out, args.record)
                write_results(jobs, args.out, args.record)
    print(write_results(jobs, args.out, args.record))


if __name__ == "__main__":
    main()
