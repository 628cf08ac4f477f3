"""Exact resume: a run interrupted at any point and resumed ends bit-identical to one done in one
go; kills never leave a broken newest checkpoint; signals checkpoint and exit 130 / 143."""

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from dpgkit import stops
from dpgkit.checkpoint import find_checkpoint, list_checkpoints, read_checkpoint
from dpgkit.presets import preset_config
from dpgkit.train import Trainer, resume_trainer, train

TIMING = ("wall_seconds", "steps_per_second", "target_reached_at_seconds")
SMALL = dict(total_env_steps=600, warmup_steps=100, batch_size=32, actor_hidden=(32, 32),
             critic_hidden=(32, 32), eval_every_steps=150, eval_episodes=2,
             checkpoint_every_steps=100)
QUIET = Console(quiet=True)


def final_state(run_dir: Path) -> tuple[dict, dict, bytes, dict]:
    """Everything a finished run leaves that must not depend on interruptions."""
    files, meta = read_checkpoint(find_checkpoint(run_dir))
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in (*TIMING, "versions"):
        summary.pop(key, None)
    for key in ("wall_seconds", "metrics_bytes", "versions", "files", "integrity"):
        meta.pop(key)
    if meta["target_reached"] is not None:  # its time is a timing; its env step is not
        meta["target_reached"].pop("seconds")
    return files, meta, (run_dir / "metrics.csv").read_bytes(), summary


def assert_same_run(a: Path, b: Path) -> None:
    files_a, meta_a, metrics_a, summary_a = final_state(a)
    files_b, meta_b, metrics_b, summary_b = final_state(b)
    for name in files_a:
        assert files_a[name].keys() == files_b[name].keys()
        for key in files_a[name]:
            assert files_a[name][key].equal(files_b[name][key]), f"{name}:{key} differs"
    assert meta_a == meta_b
    assert metrics_a == metrics_b
    assert summary_a == summary_b


@pytest.mark.parametrize("preset, overrides, stop_at", [
    ("ddpg", {}, 200),                                   # at an episode boundary
    ("ddpg", {"exploration_noise": "ou"}, 300),          # mid-episode, with OU noise state
    ("td3", {}, 300),                                    # TD3: twin critics, smoothing RNG, delay
    ("td3", {"num_envs": 2, "updates_per_step": 0.5}, 400),  # vector envs, fractional updates
    ("td3", {"prioritized": True, "n_step": 3}, 300),    # priorities, beta, n-step returns
    ("td3", {"update_at_episode_end": True}, 300),       # bursts at episode ends (2018)
    ("td7", {"actor_hidden": (32,), "critic_hidden": (32,), "zs_dim": 16,  # TD7: encoders,
             "encoder_hidden": 32, "target_update_every_updates": 50}, 300),  # LAP, bursts
    ("ddpg", {"normalize_obs": True, "target_return": -1e5,  # observation statistics, and
              "stop_at_target": False}, 300),                # when the target was reached
])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, preset, overrides, stop_at):
    config = preset_config(preset, **{**SMALL, **overrides})
    train(config, tmp_path / "whole", QUIET, progress=False)

    crashed = Trainer(config, tmp_path / "resumed")
    while crashed.env_steps < stop_at + 70:  # run past the checkpoint, then "crash"
        crashed.step()
    crashed.close()
    assert find_checkpoint(tmp_path / "resumed").name.endswith(f"{stop_at:012d}")
    train(None, tmp_path / "resumed", QUIET, progress=False)
    assert_same_run(tmp_path / "whole", tmp_path / "resumed")


def test_tensorboard_after_a_resume_shows_what_metrics_csv_holds(tmp_path):
    """The resumed run purges the crashed run's TensorBoard events after its checkpoint, and
    only those: the evaluation at the checkpoint's own env step (300 here, written just before
    the checkpoint) stays, once, as in metrics.csv."""
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = preset_config("ddpg", **SMALL)
    crashed = Trainer(config, tmp_path / "run")
    while crashed.env_steps < 370:  # past the checkpoint at 300, then "crash"
        crashed.step()
    crashed.close()
    train(None, tmp_path / "run", QUIET, progress=False)
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0})
    events.Reload()
    with (tmp_path / "run" / "metrics.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    for key in ("eval_return_mean", "episode_return"):
        shown = [(e.step, e.value) for e in events.Scalars(key)]
        written = [(int(r["env_steps"]), float(r[key])) for r in rows if r[key]]
        assert [step for step, _ in shown] == [step for step, _ in written]
        np.testing.assert_allclose([v for _, v in shown], [v for _, v in written], rtol=1e-6)
    assert 300 in [e.step for e in events.Scalars("eval_return_mean")]


@pytest.mark.parametrize("eval_every_steps", [150, 200],
                         ids=["between-evaluations", "at-an-evaluation-step"])
def test_a_stop_in_a_td7_burst_ends_it_between_updates_and_the_resume_finishes_it(
        tmp_path, eval_every_steps):
    """TD7 trains in bursts at episode ends (up to 20,000 updates late in a run): a stop signal
    ends a burst between two updates, the checkpoint holds the rest of the step (the burst's
    updates left, the ended episodes not yet through the rule), and the resumed run finishes
    it first, ending bit-identical to a run never stopped. Two envs: at env step 800 both
    episodes end, and the stop comes in the first one's burst, with the second one's left.
    Where 800 is also an evaluation step, the resume evaluates before it takes a step, and its
    line says no pace (HalfCheetah-v5 seed 2 at 175,000 once failed there, dividing by it)."""
    config = preset_config("td7", **{
        **SMALL, "eval_every_steps": eval_every_steps, "total_env_steps": 1000, "num_envs": 2,
        "actor_hidden": (32,), "critic_hidden": (32,), "zs_dim": 16, "encoder_hidden": 32,
        "target_update_every_updates": 50, "checkpoint_min_steps": 200})
    train(config, tmp_path / "whole", QUIET, progress=False)

    stopped_run = Trainer(config, tmp_path / "resumed")
    update = stopped_run.agent.update

    def update_then_signal(batch):
        info = update(batch)
        if stopped_run.agent.updates == 250:  # the 50th update of the burst at env step 800
            stopped_run.stop_signal = signal.SIGTERM
        return info

    stopped_run.agent.update = update_then_signal
    while stopped_run.stop_signal is None:
        stopped_run.step()
    assert stopped_run.env_steps == 800 and stopped_run.step_unfinished
    assert not stopped_run.budget_reached
    stops.stopped(stopped_run)
    _, meta = read_checkpoint(find_checkpoint(tmp_path / "resumed"))
    assert find_checkpoint(tmp_path / "resumed").name.endswith("000000000800")
    assert meta["unfinished_step"]["burst_left"] == 150
    assert len(meta["unfinished_step"]["episode_ends"]) == 1
    out = io.StringIO()
    train(None, tmp_path / "resumed", Console(file=out, width=200), progress=False)
    assert_same_run(tmp_path / "whole", tmp_path / "resumed")
    lines = [line.split("eval return") for line in out.getvalue().splitlines()
             if line.startswith("step")]  # ["step 900", "-1100.46 +- 45.78  (75 steps/s, 1s left)"]
    steps, paces = [int(step.split()[1]) for step, _ in lines], [pace for _, pace in lines]
    assert steps == ([900, 1000] if eval_every_steps == 150 else [800, 1000])
    assert "steps/s, " in paces[0] if eval_every_steps == 150 else "steps/s" not in paces[0]
    assert paces[1].endswith(" steps/s)")


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    config = preset_config("ddpg", **{**SMALL, "keep_checkpoints": 2})
    train(config, tmp_path / "run", QUIET, progress=False)
    names = [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert names == ["step-000000000500", "step-000000000600"]


def test_resume_can_extend_the_step_budget(tmp_path):
    config = preset_config("ddpg", **SMALL)
    train(config, tmp_path / "run", QUIET, progress=False)
    summary = train(None, tmp_path / "run", QUIET, progress=False, resume_steps=800)
    assert summary["env_steps"] == 800
    assert json.loads((tmp_path / "run" / "config.json").read_text())["total_env_steps"] == 800


def test_a_resume_may_run_on_another_number_of_threads(tmp_path):
    """torch_threads is the machine's share of cores, not the method's: ``dpgkit train --resume
    RUN --torch_threads 2`` goes on with two threads and keeps them in the run's config; on
    networks this small (which torch does not split) the run ends with the same bits as one done
    in one go on one thread."""
    import torch

    from dpgkit.cli import main

    threads_before = torch.get_num_threads()
    config = preset_config("td3", **SMALL)
    train(config, tmp_path / "whole", QUIET, progress=False)
    crashed = Trainer(config, tmp_path / "resumed")
    while crashed.env_steps < 570:  # the last 100 steps on two threads (a busy core slows them)
        crashed.step()
    crashed.close()
    try:
        resumed = resume_trainer(tmp_path / "resumed", torch_threads=2)
        assert torch.get_num_threads() == 2 and resumed.config.torch_threads == 2
        resumed.close()
        assert main(["train", "--resume", str(tmp_path / "resumed"), "--torch_threads", "2",
                     "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads_before)
    saved = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert saved["torch_threads"] == 2
    files_a, meta_a, metrics_a, summary_a = final_state(tmp_path / "whole")
    files_b, meta_b, metrics_b, summary_b = final_state(tmp_path / "resumed")
    assert meta_b["config"].pop("torch_threads") == 2
    meta_a["config"].pop("torch_threads")
    assert metrics_a == metrics_b and meta_a == meta_b
    assert all(files_a[name][key].equal(files_b[name][key])
               for name in files_a for key in files_a[name])


CLI_ARGS = ["--steps", "400", "--warmup_steps", "50", "--batch_size", "16", "--actor_hidden", "16",
            "--critic_hidden", "16", "--eval_every_steps", "200", "--eval_episodes", "1",
            "--checkpoint_every_steps", "10", "--keep_checkpoints", "3", "--no-progress"]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dpgkit.cli", *args]


def start_and_wait_for_a_checkpoint(run_dir: Path) -> subprocess.Popen:
    process = subprocess.Popen(cli("train", "--out", str(run_dir), *CLI_ARGS),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list_checkpoints(run_dir / "checkpoints"):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return process


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    subprocess.run(cli("train", "--out", str(run_dir), *CLI_ARGS), check=True,
                   capture_output=True)
    return run_dir


@pytest.mark.slow  # 10 kill-and-resume rounds (about 140 s); the default suite keeps the
# chained random-kill test of tests/test_faults.py, which kills and resumes one run again and again
def test_sigkill_at_random_moments_always_leaves_a_loadable_checkpoint(tmp_path, reference_run):
    rng = random.Random(1234)
    for trial in range(10):
        run_dir = tmp_path / f"trial{trial}"
        process = start_and_wait_for_a_checkpoint(run_dir)
        time.sleep(rng.uniform(0.0, 1.5))
        process.kill()
        process.wait()
        newest = find_checkpoint(run_dir)
        read_checkpoint(newest)  # complete and valid: raises otherwise
        if process.returncode == 0:  # it finished before the kill: nothing to resume
            continue
        resumed = subprocess.run(cli("train", "--resume", str(run_dir), "--no-progress"),
                                 capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr
        assert_same_run(reference_run, run_dir)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_a_checkpoint_and_exits(tmp_path, signum, status):
    run_dir = tmp_path / "run"
    process = start_and_wait_for_a_checkpoint(run_dir)
    os.kill(process.pid, signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert f"dpgkit train --resume {run_dir}" in err
    assert "Traceback" not in err
    steps = int(find_checkpoint(run_dir).name.split("-")[1])
    assert 0 < steps < 400
    read_checkpoint(find_checkpoint(run_dir))


def test_the_first_signal_ends_an_evaluation_that_never_ends(tmp_path):
    """An env without a time limit never finishes its first evaluation episode: the first SIGINT
    ends it within about a second, unrecorded, and writes the checkpoint (which says the
    evaluation is still due)."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        cli("train", "--env", "toy_envs:EndlessEnv", "--max_episode_steps", str(10 ** 12),
            "--out", str(run_dir), "--steps", "1000",
            "--warmup_steps", "20", "--batch_size", "8", "--actor_hidden", "8",
            "--critic_hidden", "8", "--eval_every_steps", "21", "--checkpoint_every_steps", "20",
            "--no-progress"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)})
    deadline = time.monotonic() + 120
    while not list_checkpoints(run_dir / "checkpoints"):  # step 20; at 21 it evaluates for ever
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(1.0)
    os.kill(process.pid, signal.SIGINT)  # once: before, it waited for the endless episode
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "SIGINT at env step 21, during the evaluation" in err and "Traceback" not in err
    assert f"continue with: dpgkit train --resume {run_dir}" in err
    _, meta = read_checkpoint(find_checkpoint(run_dir))
    assert find_checkpoint(run_dir).name == "step-000000000021" and meta["eval_pending"]
    assert "21," not in (run_dir / "metrics.csv").read_text()
