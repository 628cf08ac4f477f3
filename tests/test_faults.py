"""Runs that survive every fault (issue 18): a kill while a checkpoint is rewritten, a broken or
foreign newest checkpoint, an edited checkpoint.json, a failing environment, a full disk, a stop
signal during an evaluation, ``python -m dpgkit`` in a directory holding ``.py`` files, and a run
killed and resumed over and over. Each ends in one clear line, and nothing is lost: where a
run goes on, it ends bit for bit as an uninterrupted one."""

import errno
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import toy_envs
from safetensors import SafetensorError
from test_bad_input import (
    FAST,
    copy_run,
    only_the_newest_checkpoint,
    status_and_error,
    write_meta,
)
from test_resume import CLI_ARGS, assert_same_run, cli

from dpgkit.checkpoint import find_checkpoint, list_checkpoints, read_checkpoint
from dpgkit.cli import main
from dpgkit.metrics import MetricsWriter

FLAKY = ["--env", "toy_envs:FlakyEnv"]


def files_of(run: Path) -> dict[str, bytes]:
    """Every file under ``run`` and its bytes."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file()}


def leftovers(run: Path) -> list[str]:
    """The hidden directories a checkpoint write, rewrite or prune leaves while it runs."""
    return sorted(p.name for p in (run / "checkpoints").glob(".*"))


def one_line(err: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err


# --- 1. the checkpoint rewrite window; fallback; --resume CHECKPOINT_DIR --------------------------

KILL_IN_REWRITE = """
import os, shutil, sys
from pathlib import Path

real_rmtree, real_rename = shutil.rmtree, os.rename

def rmtree(path, *args, **kwargs):  # killed while deleting a complete checkpoint
    if (Path(path) / "checkpoint.json").is_file() and sys.argv[2] == "inside the deletion":
        (Path(path) / "agent.safetensors").unlink()
        os._exit(9)
    return real_rmtree(path, *args, **kwargs)

def rename(source, target):  # killed between moving the old copy aside and the new one in
    real_rename(source, target)
    if Path(target).name.startswith(".old-") and sys.argv[2] == "between the renames":
        os._exit(9)

shutil.rmtree, os.rename = rmtree, rename
from dpgkit.cli import main
sys.exit(main(["train", "--resume", sys.argv[1], "--no-progress"]))
"""


@pytest.mark.parametrize("moment", [
    "inside the deletion",
    pytest.param("between the renames", marks=pytest.mark.slow),  # the chained kills reach it
])
def test_a_kill_while_a_finished_run_rewrites_its_checkpoint_loses_nothing(
        tmp_path, finished_run, moment):
    """Resuming a finished run writes its last checkpoint again; a kill inside that rewrite
    used to leave the newest step-N half deleted (and its complete copy deleted as stale)."""
    run = copy_run(finished_run, tmp_path / "run")
    killed = subprocess.run([sys.executable, "-c", KILL_IN_REWRITE, str(run), moment],
                            capture_output=True, text=True)
    assert killed.returncode == 9, killed.stderr
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert leftovers(run) == []
    assert_same_run(finished_run, run)


@pytest.mark.parametrize("newest", ["half deleted", "absent"])
def test_a_complete_tmp_newer_than_every_checkpoint_is_promoted(tmp_path, capsys, finished_run,
                                                               newest):
    """What a kill mid-rename leaves: the complete copy in .tmp-step-N, and step-N half
    deleted or not there. The resume puts the complete copy in place instead of deleting it."""
    run = copy_run(finished_run, tmp_path / "run")
    step = find_checkpoint(run)
    shutil.copytree(step, step.with_name(f".tmp-{step.name}"))
    if newest == "half deleted":
        (step / "agent.safetensors").unlink()
    else:
        shutil.rmtree(step)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "resuming at env step 300" in capsys.readouterr().out
    assert leftovers(run) == [] and find_checkpoint(run) == step
    read_checkpoint(step)


def test_resume_and_eval_fall_back_past_a_broken_newest_checkpoint(tmp_path, capsys,
                                                                   finished_run):
    run = copy_run(finished_run, tmp_path / "run")
    (find_checkpoint(run) / "agent.safetensors").unlink()
    status, err = status_and_error(capsys, "eval", str(run), "--episodes", "1")
    assert status == 0, err
    one_line(err)
    assert "skipped the newest checkpoint" in err and "step-000000000300" in err
    assert "agent.safetensors is missing" in err and err.rstrip().endswith("step-000000000200")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "resuming at env step 200" in captured.out
    one_line(captured.err)
    assert_same_run(finished_run, run)  # trained 200 -> 300 again, to the same bits


def test_resume_takes_a_checkpoint_directory(tmp_path, capsys, finished_run):
    run = copy_run(finished_run, tmp_path / "run")
    older, newest = list_checkpoints(run / "checkpoints")
    before = files_of(run)
    status, err = status_and_error(capsys, "train", "--resume", str(older))
    assert status == 2 and f"{older} is not the newest checkpoint of {run}" in err, err
    one_line(err)
    assert files_of(run) == before
    assert main(["train", "--resume", str(newest), "--steps", "400", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resuming at env step 300" in out and f"run directory: {run} " in out
    assert find_checkpoint(run).name == "step-000000000400"


# --- 2. a checkpoint of another run ---------------------------------------------------------------

@pytest.fixture(scope="module")
def mountain_car_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("foreign") / "m"
    assert main(["train", "--env", "MountainCarContinuous-v0", "--out", str(run), *FAST]) == 0
    return run


@pytest.mark.parametrize("placed, message", [
    ("as a newer step", "holds the checkpoint of env step 300, which would be named "
                        "step-000000000300"),
    ("in place of the run's own", "is not a checkpoint of this run: its config differs from "
                                  "{run}/config.json in env_id "
                                  "'MountainCarContinuous-v0' (the run: 'Pendulum-v1')"),
])
def test_a_foreign_checkpoint_is_refused_before_any_file_is_touched(
        tmp_path, capsys, finished_run, mountain_car_run, placed, message):
    run = copy_run(finished_run, tmp_path / "run")
    target = run / "checkpoints" / ("step-999999999999" if placed == "as a newer step"
                                    else "step-000000000300")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(find_checkpoint(mountain_car_run), target)
    before = files_of(run)
    status, err = status_and_error(capsys, "train", "--resume", str(run), "--steps", "400")
    message = message.replace("{run}", str(run))
    assert status == 2 and message in err and "move it out of this run" in err, err
    one_line(err)
    assert files_of(run) == before


# --- 3. checkpoint.json checked -------------------------------------------------------------------

@pytest.mark.parametrize("edit, message", [
    (lambda m: m["param_groups"]["actor"][0].update(lr="abc"),
     "param_groups actor[0] lr is 'abc', not a number"),
    (lambda m: m["counters"].update(env_steps=-5), "counters env_steps is -5, less than 0"),
    (lambda m: m["param_groups"]["critic"][0].update(betas=[0.9, 7]),
     "param_groups critic[0] betas is 7, more than 1.0"),
    (lambda m: m["rng"].update(python=[3, [1, 2], None]), "rng python is not a Python random"),
    (lambda m: m.update(metrics_bytes=1e30), "metrics_bytes is 1e+30, not an integer"),
])
def test_checkpoint_values_are_checked_before_anything_is_restored(
        tmp_path, capsys, finished_run, edit, message):
    run = copy_run(finished_run, tmp_path / "run")
    newest = only_the_newest_checkpoint(run)
    meta = json.loads((newest / "checkpoint.json").read_text())
    edit(meta)
    write_meta(newest / "checkpoint.json", meta)  # its integrity field made to match
    before = files_of(run)
    status, err = status_and_error(capsys, "train", "--resume", str(run), "--steps", "400")
    assert status == 2 and message in err, err
    one_line(err)
    assert files_of(run) == before


def test_an_edited_checkpoint_json_fails_its_integrity_check_and_older_ones_still_load(
        tmp_path, capsys, finished_run):
    run = copy_run(finished_run, tmp_path / "run")
    older, newest = list_checkpoints(run / "checkpoints")
    meta = json.loads((newest / "checkpoint.json").read_text())
    meta["param_groups"]["actor"][0]["lr"] = 0.5  # a valid value: only the integrity check sees
    (newest / "checkpoint.json").write_text(json.dumps(meta))
    legacy = json.loads((older / "checkpoint.json").read_text())
    del legacy["integrity"]  # as written before the field existed
    (older / "checkpoint.json").write_text(json.dumps(legacy, indent=1))
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "step-000000000300/checkpoint.json fails its integrity check" in captured.err
    one_line(captured.err)
    assert "resuming at env step 200" in captured.out
    assert_same_run(finished_run, run)


# --- 4, 5. failing environments -------------------------------------------------------------------

@pytest.mark.parametrize("env, message", [
    ("BrokenInitEnv", "the environment toy_envs:BrokenInitEnv failed in its constructor, "
                      "before the first env step: RuntimeError: cannot open assets/robot.xml"),
    ("WrongResetShapeEnv", "the environment toy_envs:WrongResetShapeEnv failed in "
                           "reset(seed=0): it returned an observation of shape (3,), but its "
                           "observation space has shape (2,)"),
    ("OldGymEnv", "failed in reset(seed=0): it returned an ndarray of shape (2,), not (obs, "
                  "info): the env follows the old Gym API"),
    ("OldGymStepEnv", "failed in step at step 1 of its episode: it returned a 4-tuple, not "
                      "(obs, reward, terminated, truncated, info): the env follows the old Gym "
                      "API; Gymnasium's reset returns (obs, info)"),
])
def test_an_env_that_fails_before_training_is_one_line_and_leaves_no_run(tmp_path, capsys,
                                                                         env, message):
    run = tmp_path / "run"
    status, err = status_and_error(capsys, "train", "--env", f"toy_envs:{env}", "--out",
                                   str(run), *FAST)
    assert status == 2 and message in err, err
    one_line(err)
    assert not run.exists()


@pytest.fixture(scope="module")
def flaky_run(tmp_path_factory) -> Path:
    """A FlakyEnv run that nothing disturbed."""
    run = tmp_path_factory.mktemp("flaky") / "run"
    assert main(["train", *FLAKY, "--out", str(run), *FAST]) == 0
    return run


@pytest.mark.parametrize("bad_shape, message", [
    (False, "failed in step at step 10 of its episode: ConnectionError: the simulator closed "
            "the connection, at env step 130"),
    (True, "failed in step at step 10 of its episode: it returned an observation of shape "
           "(2,), but its observation space has shape (3,), at env step 130"),
])
def test_an_env_that_fails_mid_run_leaves_a_checkpoint_of_the_last_step(
        tmp_path, capsys, monkeypatch, flaky_run, bad_shape, message):
    run = tmp_path / "run"
    monkeypatch.setattr(toy_envs.FlakyEnv, "fail_at", 130)
    monkeypatch.setattr(toy_envs.FlakyEnv, "bad_shape", bad_shape)
    status, err = status_and_error(capsys, "train", *FLAKY, "--out", str(run), *FAST)
    assert status == 4 and message in err, err
    one_line(err)
    assert (f"checkpoint of env step 129 written to {run}/checkpoints/step-000000000129; once "
            f"the env is fixed, continue with: dpgkit train --resume {run}") in err
    monkeypatch.setattr(toy_envs.FlakyEnv, "fail_at", None)  # fixed
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert_same_run(flaky_run, run)


# --- 6. a full disk -------------------------------------------------------------------------------

@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                    'message: "No space left on device" })'),
])
def test_a_full_disk_while_writing_a_checkpoint(tmp_path, capsys, monkeypatch, finished_run,
                                                error: Exception):
    import safetensors.torch

    run, real, calls = tmp_path / "run", safetensors.torch.save_file, []

    def save_file(tensors, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:  # the first file of the second checkpoint
            Path(path).write_bytes(b"partial")
            raise error
        return real(tensors, path, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    status, err = status_and_error(capsys, "train", "--out", str(run), *FAST)
    assert status == 5, err
    one_line(err)
    assert (f"cannot write the checkpoint {run}/checkpoints/step-000000000200 (") in err
    assert "No space left on device" in err
    assert (f"the partial checkpoint was removed; the last good checkpoint is "
            f"{run}/checkpoints/step-000000000100; once there is room, continue with: "
            f"dpgkit train --resume {run}") in err
    assert leftovers(run) == [] and [p.name for p in list_checkpoints(run / "checkpoints")] == [
        "step-000000000100"]
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert_same_run(finished_run, run)


def test_a_full_disk_while_writing_metrics(tmp_path, capsys, monkeypatch, finished_run):
    run, real, rows = tmp_path / "run", MetricsWriter.row, []

    def row(self, env_steps, **values):
        rows.append(env_steps)
        if env_steps > 250:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real(self, env_steps, **values)

    monkeypatch.setattr(MetricsWriter, "row", row)
    status, err = status_and_error(capsys, "train", "--out", str(run), *FAST)
    assert status == 5, err
    one_line(err)
    assert (f"cannot write {run}/metrics.csv (No space left on device); the newest checkpoint "
            f"is {run}/checkpoints/step-000000000200") in err
    monkeypatch.setattr(MetricsWriter, "row", real)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert_same_run(finished_run, run)


# --- 7. a stop signal during an evaluation --------------------------------------------------------

def test_a_stop_signal_ends_an_evaluation_and_the_resume_runs_it_again(
        tmp_path, capsys, monkeypatch, flaky_run):
    run = tmp_path / "run"
    monkeypatch.setattr(toy_envs.FlakyEnv, "signal_in_eval", True)  # at the evaluation of 150
    status, err = status_and_error(capsys, "train", *FLAKY, "--out", str(run), *FAST)
    assert status == 130, err
    one_line(err)
    assert ("SIGINT at env step 150, during the evaluation (ended in its episode 1 of 1, not "
            "recorded: the resume runs it again): checkpoint written to "
            f"{run}/checkpoints/step-000000000150") in err
    rows = (run / "metrics.csv").read_text().splitlines()
    assert not any(r.startswith("150,") for r in rows), "a cut-short evaluation was recorded"
    _, meta = read_checkpoint(find_checkpoint(run))
    assert meta["eval_pending"] is True
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert_same_run(flaky_run, run)


# --- 8. python -m dpgkit --------------------------------------------------------------------------

def test_python_m_dpgkit_does_not_import_the_current_directory(tmp_path):
    marker = tmp_path / "imported"
    (tmp_path / "numpy.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                       "raise ImportError('the wrong numpy')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-m", "dpgkit", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "usage: dpgkit" in done.stdout, done.stderr
    assert not marker.exists(), "python -m dpgkit imported a .py file of the current directory"


# --- the chained random kill ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("reference") / "run"
    subprocess.run(cli("train", "--out", str(run), *CLI_ARGS), check=True, capture_output=True)
    return run


def _kill_at_random(process: subprocess.Popen, run: Path, mode: str,
                    rng: random.Random) -> bool:
    """SIGKILL ``process`` at a random moment of the kind ``mode`` names; False if it ended
    first. ``start``: any time in its first seconds (import, recovery, restore); ``write``: as
    soon as a checkpoint write, rewrite or prune is seen under way; ``train``: soon after its
    next new checkpoint."""
    checkpoints, deadline = run / "checkpoints", time.monotonic() + 120
    if mode == "start":
        time.sleep(rng.uniform(0.5, 4.0))
    else:
        before = {p.name for p in list_checkpoints(checkpoints)}
        while process.poll() is None and time.monotonic() < deadline:
            if mode == "write" and leftovers(run):
                break
            if mode == "train" and {p.name for p in list_checkpoints(checkpoints)} - before:
                time.sleep(rng.uniform(0.0, 0.3))
                break
            time.sleep(0.001)
    if process.poll() is not None:
        return False
    process.kill()
    process.wait()
    return True


def chained_kills(tmp_path: Path, reference: Path, kills: int, seed: int,
                  modes: tuple[str, ...] = ()) -> dict[str, int]:
    """Train the run of ``reference``, killing it ``kills`` times at random moments and resuming
    after each; the result must be bit-identical. ``modes``: the kind of moment of each kill
    (:func:`_kill_at_random`), by default drawn at random. Returns the figures."""
    rng, run = random.Random(seed), tmp_path / "run"
    figures = {"kills": 0, "mid_write": 0, "mid_start_or_resume": 0, "processes": 0}
    command = cli("train", "--out", str(run), *CLI_ARGS)
    while True:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        figures["processes"] += 1
        first = not list_checkpoints(run / "checkpoints")
        mode = "train" if first else (modes[figures["kills"] % len(modes)] if modes else
                                      rng.choice(["start", "write", "write", "train"]))
        if figures["kills"] < kills and _kill_at_random(process, run, mode, rng):
            figures["kills"] += 1
            figures["mid_write"] += bool(leftovers(run))
            figures["mid_start_or_resume"] += mode == "start"
            command = cli("train", "--resume", str(run), "--no-progress")
            continue
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        break
    assert leftovers(run) == []
    assert_same_run(reference, run)
    return figures


def test_a_run_killed_and_resumed_again_and_again_ends_bit_identical(tmp_path,
                                                                      cli_reference):
    figures = chained_kills(tmp_path, cli_reference, kills=3, seed=18,
                            modes=("train", "write", "start"))
    print(f"chained kills: {figures}")
    assert figures["kills"] == 3 and figures["mid_write"] >= 1


@pytest.mark.slow
def test_fifty_random_kills_and_resumes_end_bit_identical(tmp_path, cli_reference):
    figures = chained_kills(tmp_path, cli_reference, kills=50, seed=1850)
    print(f"chained kills: {figures}")
    assert figures["kills"] == 50 and figures["mid_write"] >= 5
