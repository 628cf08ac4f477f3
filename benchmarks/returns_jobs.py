"""The returns benchmark's runs (benchmarks/returns.py): the jobs and the suites, where a run's
directory and record lie, the state it is in, and the command that takes it one step nearer done
(a ``dpgkit train`` that starts, restarts or resumes it), run with its output in a locked log
whose start lines name the commits that ran it."""

import fcntl
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dpgkit.reference import WARMUP_STEPS, task_name

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
        stream.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {how} at {head_commit()}: "
                     f"{shlex.join(cmd)}\n")
        stream.flush()
        code = subprocess.run(cmd, stdout=stream, stderr=subprocess.STDOUT,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)}).returncode
    return job, code, how


def outcome(job: Job, out: Path, code: int) -> str:
    """What the driver says of a run that ended: ``exit 0``, else its exit code, its log and the
    log's last line (a traceback's error, or dpgkit's own message: a stop, a refusal)."""
    if code == 0:
        return "exit 0"
    log = job.run_dir(out).with_suffix(".log")
    lines = [line for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
    return f"exit {code}, {log}: {lines[-1] if lines else '(empty)'}"


def log_starts(log: Path) -> list[tuple[str, str]]:
    """(how, commit) of each start or resume line of a run's log, ``# DATE TIME HOW at COMMIT:``
    (commit "" in the lines written before the log named commits: ``# DATE TIME HOW:``)."""
    text = log.read_text() if log.is_file() else ""
    return re.findall(r"^# \S+ \S+ (\w+)(?: at (\S+))?: ", text, flags=re.MULTILINE)


def commits_of(starts: list[tuple[str, str]]) -> str:
    """The commits that ran a run (its log's :func:`log_starts`), else this checkout's."""
    return ", ".join(dict.fromkeys(commit for _, commit in starts if commit)) or head_commit()


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=Path(__file__).parent).stdout.strip() or "unknown"
