"""Every bad input ends with one clear line and exit status 2, loses nothing already written,
and no checkpoint can run code."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from dpgkit.checkpoint import find_checkpoint
from dpgkit.cli import main

FAST = ["--steps", "300", "--warmup_steps", "50", "--batch_size", "16", "--actor_hidden", "16",
        "--critic_hidden", "16", "--eval_every_steps", "150", "--eval_episodes", "1",
        "--checkpoint_every_steps", "100", "--no-progress"]


def status_and_error(capsys, *argv: str) -> tuple[int, str]:
    try:
        status = main(list(argv))
    except SystemExit as exit_:  # argparse's own errors
        status = int(exit_.code)
    err = capsys.readouterr().err
    return status, err


def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("env, message", [
    ("CartPole-v1", "Discrete action space"),
    ("toy_envs:DictActionEnv", "Dict action space"),
    ("toy_envs:ImageObsEnv", "needs a flat (1-D) Box"),
    ("Pendulm-v1", "did you mean Pendulum-v1"),
    ("no_such_module:Env", "cannot import 'no_such_module'"),
])
def test_environments_dpgkit_cannot_use(tmp_path, capsys, env, message):
    status, err = status_and_error(capsys, "train", "--env", env, "--out", str(tmp_path / "r"))
    assert status == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_multi_discrete_action_space_is_refused():
    import gymnasium as gym
    from toy_envs import CountingEnv

    from dpgkit.envs import check_spaces
    from dpgkit.errors import EnvError

    env = CountingEnv()
    env.action_space = gym.spaces.MultiDiscrete([3, 3])
    with pytest.raises(EnvError, match="MultiDiscrete action space"):
        check_spaces(env, "toy")


@pytest.mark.parametrize("content, message", [
    ('{"tau": 2.0}', "tau must be in (0, 1]"),
    ('{"batch_size": "big"}', "batch_size must be of type int"),
    ('{"actor_hidden": [256, "x"]}', "actor_hidden must be of type a list of integers"),
    ('{"learning_rate": 0.1}', "there is no setting learning_rate: `dpgkit train --help`"),
    ('{"tua": 0.01}', "there is no setting tua (did you mean tau?)"),
    ('{"steps": 300}', "there is no setting steps (did you mean total_env_steps?)"),
    ('{"policy_delay": 3}', "that is a TD3 setting, use a td3 preset (--preset td3)"),
    ('{"tau": 0.01,', "is not valid JSON"),
    ('[1, 2]', "must hold a JSON object"),
])
def test_bad_config_file(tmp_path, capsys, content, message):
    path = tmp_path / "config.json"
    path.write_text(content)
    status, err = status_and_error(capsys, "train", "--config", str(path), "--out",
                                   str(tmp_path / "r"))
    assert status == 2 and message in err, err


def test_config_file_is_applied_and_flags_win(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"tau": 0.02, "gamma": 0.9}')
    assert main(["train", "--config", str(path), "--gamma", "0.95", "--out",
                 str(tmp_path / "r"), *FAST]) == 0
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["tau"] == 0.02 and saved["gamma"] == 0.95


def test_existing_run_needs_resume_or_overwrite(tmp_path, capsys, finished_run):
    run = copy_run(finished_run, tmp_path / "run")
    before = (run / "metrics.csv").read_bytes()
    status, err = status_and_error(capsys, "train", "--out", str(run), *FAST)
    assert status == 2 and "already exists" in err
    assert (run / "metrics.csv").read_bytes() == before
    assert main(["train", "--out", str(run), "--overwrite", *FAST]) == 0


def test_overwrite_never_deletes_a_directory_that_is_not_a_run(tmp_path, capsys):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    status, err = status_and_error(capsys, "train", "--out", str(precious), "--overwrite")
    assert status == 2 and "does not look like a dpgkit run directory" in err
    assert (precious / "chapter1.tex").exists()


def test_resume_with_changed_settings_is_refused(tmp_path, capsys, finished_run):
    status, err = status_and_error(capsys, "train", "--resume", str(finished_run), "--tau", "0.1")
    assert status == 2 and "drop --tau" in err


def only_the_newest_checkpoint(run: Path) -> Path:
    """Delete a run's older checkpoints: a bad newest one then has none to fall back to."""
    import shutil

    for older in sorted((run / "checkpoints").iterdir())[:-1]:
        shutil.rmtree(older)
    return find_checkpoint(run)


def write_meta(meta_path: Path, meta: dict) -> None:
    """Write an edited checkpoint.json with its integrity field made to match, as a careful
    attacker would (the deeper checks must catch it then)."""
    from dpgkit.checkpoint_checks import seal

    meta_path.write_text(json.dumps(seal(meta)))


def corrupt(run: Path, how: str) -> None:
    checkpoint = find_checkpoint(run)
    meta_path = checkpoint / "checkpoint.json"
    if how == "no checkpoint":
        import shutil

        shutil.rmtree(run / "checkpoints")
    elif how == "truncated tensors":
        data = (checkpoint / "agent.safetensors").read_bytes()
        (checkpoint / "agent.safetensors").write_bytes(data[: len(data) // 2])
    elif how == "edited JSON":
        meta_path.write_text(meta_path.read_text()[:-20])
    elif how == "JSON without a section":
        meta = json.loads(meta_path.read_text())
        del meta["counters"]
        write_meta(meta_path, meta)
    elif how == "JSON edited":
        meta = json.loads(meta_path.read_text())
        meta["counters"]["episodes"] += 1
        meta_path.write_text(json.dumps(meta))
    elif how in ("tensors of the wrong shape", "another env"):
        meta = json.loads(meta_path.read_text())
        if how == "another env":
            meta["config"]["env_id"] = "MountainCarContinuous-v0"
        else:
            tensors = safetensors.torch.load_file(str(checkpoint / "agent.safetensors"))
            tensors["actor.net.0.0.weight"] = torch.zeros(7, 7)
            safetensors.torch.save_file(tensors, str(checkpoint / "agent.safetensors"))
            _rehash(checkpoint, meta, "agent.safetensors")
        write_meta(meta_path, meta)


def _rehash(checkpoint: Path, meta: dict, name: str) -> None:
    """Make the manifest match a replaced file, as an attacker or a careless edit would."""
    import hashlib

    data = (checkpoint / name).read_bytes()
    meta["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("how, message", [
    ("no checkpoint", "no checkpoint in"),
    ("truncated tensors", "does not match its recorded size and SHA-256"),
    ("edited JSON", "is not valid JSON"),
    ("JSON without a section", "lacks its 'counters' section"),
    ("JSON edited", "fails its integrity check"),
    ("tensors of the wrong shape", "the actor tensors do not fit"),
    ("another env", "is not a checkpoint of this run: its config differs from"),
])
def test_resume_of_a_bad_checkpoint(tmp_path, capsys, finished_run, how, message):
    """A run whose only checkpoint is bad: refused (with older ones, see
    tests/test_faults.py::test_resume_and_eval_fall_back_past_a_broken_newest_checkpoint)."""
    run = copy_run(finished_run, tmp_path / "run")
    if how != "no checkpoint":
        only_the_newest_checkpoint(run)
    corrupt(run, how)
    before = (run / "metrics.csv").read_bytes()
    status, err = status_and_error(capsys, "train", "--resume", str(run))
    assert status == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (run / "metrics.csv").read_bytes() == before, "a failed resume must not lose data"


class Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("attack", ["extra .pt file", "extra .pkl file", "extra .npy file",
                                    "pickle as agent.safetensors"])
def test_a_pickle_payload_is_refused_and_runs_nothing(tmp_path, capsys, finished_run, attack):
    run = copy_run(finished_run, tmp_path / "run")
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Payload(marker))
    checkpoint = only_the_newest_checkpoint(run)  # none to fall back to: refused
    if attack == "pickle as agent.safetensors":
        (checkpoint / "agent.safetensors").write_bytes(payload)
        meta = json.loads((checkpoint / "checkpoint.json").read_text())
        _rehash(checkpoint, meta, "agent.safetensors")
        write_meta(checkpoint / "checkpoint.json", meta)
    elif attack == "extra .npy file":
        np.save(checkpoint / "replay.npy", np.array([Payload(marker)], dtype=object),
                allow_pickle=True)
    else:
        (checkpoint / ("model.pt" if "pt" in attack else "state.pkl")).write_bytes(payload)
    for argv in (["train", "--resume", str(run)], ["eval", str(run)]):
        status, err = status_and_error(capsys, *argv)
        assert status == 2 and "checkpoint" in err, err
    assert not marker.exists(), "loading a checkpoint ran code"


def test_a_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    status, err = status_and_error(capsys, "train", "--env", "toy_envs:NaNEnv", "--out", str(run),
                                   *FAST)
    assert status == 3, err
    assert "observation became nan at env step 250" in err
    assert "the last good checkpoint is" in err and err.count("\n") == 1
    report = json.loads((run / "divergence.json").read_text())
    assert report["env_steps"] == 249  # the step that failed was not counted
    assert report["last_good_checkpoint"].endswith("step-000000000200")
    assert find_checkpoint(run).name == "step-000000000200"
    assert (run / "metrics.csv").stat().st_size > 0


def test_a_refused_resume_leaves_the_run_as_it_was(tmp_path, capsys, finished_run):
    """A run killed after its last checkpoint has rows past it in metrics.csv; a resume refused
    while restoring (here: the env changed) must not cut them off, nor rewrite config.json."""
    run = copy_run(finished_run, tmp_path / "run")
    corrupt(run, "another env")
    with (run / "metrics.csv").open("a") as metrics:
        metrics.write("301" + "," * 20 + "\n")  # a row written after the checkpoint
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    status, err = status_and_error(capsys, "train", "--resume", str(run), "--steps", "900")
    assert status == 2 and "is not a checkpoint of this run" in err, err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_resume_with_fewer_steps_than_done_is_refused(tmp_path, capsys, finished_run):
    run = copy_run(finished_run, tmp_path / "run")
    status, err = status_and_error(capsys, "train", "--resume", str(run), "--steps", "100")
    assert status == 2 and "less than the 300 env steps this run has already done" in err, err


def test_overwrite_checks_the_new_run_before_deleting_the_old_one(tmp_path, capsys,
                                                                  finished_run):
    run = copy_run(finished_run, tmp_path / "run")
    status, err = status_and_error(capsys, "train", "--out", str(run), "--overwrite",
                                   "--env", "CartPole-v1")
    assert status == 2 and "Discrete action space" in err
    assert (run / "metrics.csv").read_bytes() == (finished_run / "metrics.csv").read_bytes()


@pytest.mark.parametrize("layout, message", [
    ("config.json only", "no metrics.csv"),
    ("a run plus files of yours", "files dpgkit did not write: src, todo.txt"),
    ("a file", "is a file, not a run directory"),
])
def test_overwrite_deletes_only_what_dpgkit_wrote(tmp_path, capsys, finished_run, layout,
                                                  message):
    target = tmp_path / "project"
    if layout == "a file":
        target.write_text("keep me")
    elif layout == "config.json only":
        target.mkdir()
        (target / "config.json").write_text('{"name": "my-app"}')
    else:
        copy_run(finished_run, target)
        (target / "src").mkdir()
        (target / "todo.txt").write_text("keep me")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    status, err = status_and_error(capsys, "train", "--out", str(target), "--overwrite", *FAST)
    assert status == 2 and message in err, err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("argv, message", [
    (["--updates_per_step", "inf"], "updates_per_step must be a finite number"),
    (["--exploration_noise", "ou", "--ou_mu", "nan"], "ou_mu must be a finite number"),
    (["--actor_lr", "inf"], "actor_lr must be a finite number"),
    (["--gaussian_sigma", "inf"], "gaussian_sigma must be a finite number"),
    (["--final_init", "1e300"], "final_init must be in [0, 1]"),
    (["--seed", "100000000000000000000"], "seed must be in [0, 2**62)"),
    (["--replay_size", "10000000000000"], "lower --replay_size"),
    (["--actor_hidden", "2000000,2000000"], "lower --actor_hidden and --critic_hidden"),
    (["--seeds", "0-1", "--workers", "-1"], "--workers must be >= 1"),
    (["--env", ":MyEnv"], "names no module or no class"),
    (["--env", "toy_envs:NeedsArgumentEnv"], "dpgkit makes it with no arguments"),
    (["--env", "toy_envs:NoSpacesEnv"], "sets no action_space and no observation_space"),
])
def test_values_that_would_fail_later_are_refused_up_front(tmp_path, capsys, argv, message):
    run = tmp_path / "run"
    status, err = status_and_error(capsys, "train", "--out", str(run), *FAST, *argv)
    assert status == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not run.exists(), "a refused run must leave no run directory"


def test_eval_imports_no_module_a_checkpoint_names(tmp_path, capsys, finished_run, monkeypatch):
    """checkpoint.json is plain JSON anyone can edit: an env id naming a module would make eval
    import (run) it. eval asks for --env instead; with it, the spaces must match."""
    (tmp_path / "pwnmod.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = copy_run(finished_run, tmp_path / "run")
    meta_path = find_checkpoint(run) / "checkpoint.json"
    meta = json.loads(meta_path.read_text())
    meta["env"]["env_id"] = "pwnmod:Env"
    write_meta(meta_path, meta)
    status, err = status_and_error(capsys, "eval", str(run), "--episodes", "1")
    assert status == 2 and "if you trust it, name it yourself: --env pwnmod:Env" in err, err
    assert not (tmp_path / "pwned").exists(), "eval imported a module the checkpoint named"
    assert main(["eval", str(run), "--episodes", "1", "--env", "Pendulum-v1"]) == 0
    status, err = status_and_error(capsys, "eval", str(run), "--episodes", "1", "--env",
                                   "MountainCarContinuous-v0")
    assert status == 2 and "evaluate on the environment it was trained on" in err, err


@pytest.mark.parametrize("argv, message", [
    (["plot", "{run}", "-o", "/proc/dpgkit-test/p.png"], "cannot write into /proc/dpgkit-test"),
    (["plot", "{run}", "-o", "{run}/checkpoints.png"], "-o {run}/checkpoints.png is a directory"),
    (["export", "{run}", "--format", "torchscript", "-o", "/proc/x/p.pt"], "cannot write into"),
    (["export", "{run}", "--format", "torchscript", "-o", "{run}"], "is a directory"),
    (["eval", "{run}", "--seed", "-1"], "--seed must be >= 0"),
    (["eval", "{run}", "--video", "/proc/dpgkit-test/videos"], "choose another --video"),
])
def test_outputs_that_cannot_be_written_are_one_line_errors(tmp_path, capsys, finished_run,
                                                            argv, message):
    run = copy_run(finished_run, tmp_path / "run")
    (run / "checkpoints.png").mkdir()  # a directory where a plot file would go
    argv = [a.replace("{run}", str(run)) for a in argv]
    before = sorted(str(p) for p in run.rglob("*"))
    status, err = status_and_error(capsys, *argv)
    assert status == 2 and message.replace("{run}", str(run)) in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(str(p) for p in run.rglob("*")) == before


def test_plot_makes_the_folder_of_its_output_and_export_of_a_checkpoint_writes_beside_it(
        tmp_path, capsys, finished_run):
    run = copy_run(finished_run, tmp_path / "run")
    assert main(["plot", str(run), "-o", str(tmp_path / "new" / "folder" / "p.png")]) == 0
    assert (tmp_path / "new" / "folder" / "p.png").is_file()
    checkpoint = find_checkpoint(run)
    assert main(["export", str(checkpoint), "--format", "torchscript"]) == 0
    assert (run / f"policy-{checkpoint.name}.pt").is_file()
