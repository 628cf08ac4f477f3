"""Stopping at a target return: the run ends at the first evaluation whose mean reaches it, with
its final checkpoint, curve and summary; summary.json records when (steps and seconds), whether
the run stops or not, and a resumed run keeps the record."""

import json

from dpgkit.checkpoint import find_checkpoint
from dpgkit.cli import main

SHORT = ["--steps", "600", "--warmup_steps", "50", "--batch_size", "16", "--actor_hidden", "16",
         "--critic_hidden", "16", "--eval_every_steps", "200", "--eval_episodes", "1",
         "--checkpoint_every_steps", "200", "--no-progress"]


def summary(run):
    return json.loads((run / "summary.json").read_text())


def test_the_run_stops_at_the_first_evaluation_that_reaches_the_target(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--target_return=-100000", *SHORT]) == 0
    out = capsys.readouterr().out
    assert "reached the target return -100000 at env step 200" in out and "stopping" in out
    record = summary(run)
    assert record["env_steps"] == 200 and record["target_return"] == -100000
    assert record["target_reached_at_env_steps"] == 200
    assert 0 < record["target_reached_at_seconds"] <= record["wall_seconds"]
    assert find_checkpoint(run).name.endswith("000000000200") and (run / "curve.png").is_file()


def test_without_stopping_the_record_is_kept_and_a_resume_keeps_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--target_return=-100000",
                 "--stop_at_target", "false", *SHORT, "--steps", "400"]) == 0
    first = summary(run)
    assert first["env_steps"] == 400 and first["target_reached_at_env_steps"] == 200
    assert main(["train", "--resume", str(run), "--steps", "600", "--no-progress"]) == 0
    resumed = summary(run)
    assert resumed["env_steps"] == 600
    assert resumed["target_reached_at_env_steps"] == 200
    assert resumed["target_reached_at_seconds"] == first["target_reached_at_seconds"]


def test_a_target_never_reached_is_null(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--target_return", "5", *SHORT, "--steps",
                 "200"]) == 0
    record = summary(run)
    assert record["target_reached_at_env_steps"] is None
    assert record["target_reached_at_seconds"] is None
    assert record["target_return"] == 5


def test_seeds_record_each_seeds_target_in_the_aggregate(tmp_path):
    out = tmp_path / "five"
    assert main(["train", "--seeds", "1", "--out", str(out), "--target_return=-100000",
                 *SHORT]) == 0  # one seed: the aggregate's form, at one process's cost
    aggregate = summary(out)
    assert aggregate["target_reached_at_env_steps"] == {"1": 200}
    assert all(seconds > 0 for seconds in aggregate["target_reached_at_seconds"].values())
