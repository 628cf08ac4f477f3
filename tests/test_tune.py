"""``dpgkit tune``: the search spaces draw valid configs, pruning stops a trial's runs, the best
config trains as it is, a killed study resumes with its finished trials, two processes share a
study. Tiny trials on Pendulum (a few hundred env steps, 16-unit networks)."""

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dpgkit.cli import main
from dpgkit.config_dict import config_from_dict, config_to_dict
from dpgkit.presets import PRESETS
from dpgkit.tune_space import SPACES, describe, suggest

optuna = pytest.importorskip("optuna")
from dpgkit.tune import TuneSettings, tune  # noqa: E402 (needs optuna)

TINY = {"actor_hidden": (16,), "critic_hidden": (16,), "batch_size": 32, "warmup_steps": 50,
        "total_env_steps": 200, "eval_every_steps": 100, "eval_episodes": 1,
        "checkpoint_every_steps": 0}
TINY_FLAGS = ["--steps", "200", "--eval_every_steps", "100", "--eval_episodes", "1",
              "--fixed", "actor_hidden=[16] critic_hidden=[16] batch_size=32 warmup_steps=50 "
              "checkpoint_every_steps=0", "--seeds_per_trial", "1", "--startup_trials", "1"]


def run_tune(out: Path, *flags: str, wait: bool = True):
    command = [sys.executable, "-m", "dpgkit.cli", "tune", "--out", str(out), *TINY_FLAGS,
               *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    if wait:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        return stdout
    return process


def states(out: Path) -> list[str]:
    """The state of each trial of the study in OUT/study.db, read with SQL, not Optuna."""
    with sqlite3.connect(out / "study.db", timeout=30) as db:
        return [row[0] for row in db.execute("SELECT state FROM trials ORDER BY number")]


@pytest.mark.parametrize("algorithm", ["ddpg", "td3", "td7"])
def test_every_drawn_trial_is_a_valid_config_and_fixed_fields_are_not_drawn(algorithm):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    base = PRESETS[algorithm]
    fixed = {"batch_size": 64, "exploration_noise": "ou"}
    names = set()
    for _ in range(30):
        trial = study.ask()
        drawn = suggest(trial, algorithm, fixed)
        config = config_from_dict({**config_to_dict(base), **fixed, **drawn})
        assert config.batch_size == 64 and "batch_size" not in trial.params
        names |= set(drawn)
        study.tell(trial, 0.0)
    searched = {d.name for d in SPACES[algorithm]} - set(fixed)
    if algorithm != "td7":  # DDPG's space follows the fixed noise kind: ou_sigma, no gaussian
        searched -= {"gaussian_sigma"}
        assert "ou_sigma" in names
    assert names == searched
    assert ("policy_delay" in names) == (algorithm != "ddpg")
    assert len(describe(algorithm)) == len(SPACES[algorithm])


def test_a_pruned_trial_stops_its_runs_at_the_first_evaluation(tmp_path):
    settings = TuneSettings(out=tmp_path, trials=2, seeds_per_trial=2, pruner="threshold",
                            prune_below=0.0, heartbeat_seconds=5)  # Pendulum's returns are < 0
    base = config_from_dict({**config_to_dict(PRESETS["ddpg"]), **TINY})
    summary = tune(base, dict(TINY), settings, report=lambda line: None)
    assert summary["trials"] == {"PRUNED": 2} and summary["best"] is None
    assert not (tmp_path / "best_config.json").exists()
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert [r["last_reported_step"] for r in rows] == [100, 100]
    for seed in (0, 1):  # each seed's run stopped right after its first evaluation
        metrics = (tmp_path / "trial-0000" / f"seed{seed}" / "metrics.csv").read_text()
        evaluated = [line for line in metrics.splitlines()[1:] if line.split(",")[0] == "100"]
        assert evaluated and "200" not in [line.split(",")[0] for line in metrics.splitlines()]
    assert (tmp_path / "history.png").read_bytes()[:4] == b"\x89PNG"


def tiny_base():
    return config_from_dict({**config_to_dict(PRESETS["ddpg"]), **TINY})


def test_the_best_config_trains_with_train_config_as_it_is(tmp_path):
    out = tmp_path / "study"
    settings = TuneSettings(out=out, trials=2, seeds_per_trial=1, pruner="none",
                            startup_trials=1)
    summary = tune(tiny_base(), dict(TINY), settings, report=lambda line: None)
    best = json.loads((out / "best_config.json").read_text())
    run_dir = Path(summary["best"]["run_dir"])
    assert best == json.loads((run_dir / "seed0" / "config.json").read_text())
    rows = json.loads((out / "trials.json").read_text())
    assert summary["best"]["value"] == max(r["value"] for r in rows)
    assert best["actor_hidden"] == [16] and best["total_env_steps"] == 200
    run = tmp_path / "run"
    assert main(["train", "--config", str(out / "best_config.json"), "--out", str(run),
                 "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text()) == best


def test_a_trial_whose_process_died_is_failed_and_retried_finished_ones_kept(tmp_path):
    settings = TuneSettings(out=tmp_path, trials=1, seeds_per_trial=1, pruner="none",
                            startup_trials=1, heartbeat_seconds=1)
    tune(tiny_base(), dict(TINY), settings, report=lambda line: None)
    study = optuna.load_study(study_name="dpgkit", storage=f"sqlite:///{tmp_path / 'study.db'}")
    orphan = study.ask()  # a trial left RUNNING, its heartbeat stopped, as by a kill -9
    study._storage.record_heartbeat(orphan._trial_id)
    time.sleep(4.5)  # well past the grace period of 2 heartbeats (SQLite keeps whole seconds)
    summary = tune(tiny_base(), dict(TINY), settings, report=lambda line: None)
    assert states(tmp_path) == ["COMPLETE", "FAIL", "COMPLETE"]
    assert summary["trials"] == {"COMPLETE": 2, "FAIL": 1}
    retried = study.get_trials()[2].system_attrs["retry_history"]
    assert retried == [orphan.number]


@pytest.mark.slow
def test_a_killed_study_resumes_keeping_its_finished_trials(tmp_path):
    process = run_tune(tmp_path, "--trials", "20", "--heartbeat_seconds", "1", "--pruner",
                       "none", wait=False)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if (tmp_path / "study.db").exists() and states(tmp_path).count("COMPLETE") >= 2 \
                and states(tmp_path)[-1] == "RUNNING":
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = states(tmp_path)
    assert before.count("COMPLETE") >= 2 and before[-1] == "RUNNING"
    time.sleep(3)  # the dead trial's heartbeat goes stale (grace period: 2 heartbeats)
    stdout = run_tune(tmp_path, "--trials", "2", "--heartbeat_seconds", "1", "--pruner", "none")
    after = states(tmp_path)
    assert after[: len(before) - 1] == before[:-1]  # the finished trials are kept as they were
    assert after[len(before) - 1] == "FAIL"  # the killed one, failed and then retried
    assert after.count("COMPLETE") == before.count("COMPLETE") + 2
    with sqlite3.connect(tmp_path / "study.db") as db:
        retried = db.execute("SELECT COUNT(*) FROM trial_system_attributes WHERE key = "
                             "'retry_history'").fetchone()[0]
    assert retried == 1
    assert f"{before.count('COMPLETE') + 2} complete" in stdout


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path):
    db = tmp_path / "shared.db"
    storage = ["--storage", f"sqlite:///{db}", "--study_name", "shared", "--pruner", "none"]
    processes = [run_tune(tmp_path / f"p{k}", "--trials", "2", *storage, wait=False)
                 for k in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    with sqlite3.connect(db) as connection:
        numbers = [row[0] for row in connection.execute(
            "SELECT number FROM trials WHERE state = 'COMPLETE' ORDER BY number")]
    assert numbers == [0, 1, 2, 3]  # 2 + 2 trials, numbered by the one study
    dirs = sorted(p.name for k in range(2) for p in (tmp_path / f"p{k}").glob("trial-*"))
    assert dirs == [f"trial-000{n}" for n in range(4)]


def test_without_optuna_the_command_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    assert main(["tune", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == ("dpgkit: error: dpgkit tune needs Optuna: pip "
                                               "install 'dpgkit[tune]'")
