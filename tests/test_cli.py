"""The command line: a short run writes every file, eval reads it back, bad input exits 2."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from toy_envs import CountingEnv

from dpgkit.cli import main
from dpgkit.envs import check_spaces
from dpgkit.errors import EnvError

FAST = ["--steps", "300", "--warmup_steps", "100", "--batch_size", "32", "--actor_hidden", "32,32",
        "--critic_hidden", "32,32", "--eval_every_steps", "150", "--eval_episodes", "2",
        "--no-progress"]
SUMMARY_KEYS = {"eval_return_mean", "eval_return_std", "eval_episodes", "env_steps", "updates",
                "wall_seconds", "steps_per_second", "preset", "env_id", "seed", "versions"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dpgkit.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_train_writes_the_run_directory_and_eval_reads_it(tmp_path):
    run = tmp_path / "run"
    result = run_cli("train", "--env", "Pendulum-v1", "--seed", "3", "--tau", "0.01", "--out",
                     str(run), *FAST)
    assert result.returncode == 0, result.stderr
    assert "final evaluation: return" in result.stdout
    for name in ("config.json", "metrics.csv", "curve.png", "summary.json",
                 "checkpoints/step-000000000300/agent.safetensors",
                 "checkpoints/step-000000000300/checkpoint.json"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*")), "TensorBoard events missing"
    assert (run / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((run / "config.json").read_text())
    assert config["tau"] == 0.01 and config["seed"] == 3 and config["actor_hidden"] == [32, 32]
    summary = json.loads((run / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["env_steps"] == 300 and summary["updates"] == 200
    assert summary["eval_episodes"] == 2 and summary["seed"] == 3
    assert {"dpgkit", "torch", "gymnasium"} <= summary["versions"].keys()
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"episode_return", "critic_loss", "actor_loss", "q_mean", "eval_return_mean"} <= set(
        header)

    evaluated = run_cli("eval", str(run), "--episodes", "3")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads((run / "eval.json").read_text())
    assert result["episodes"] == 3 and len(result["returns"]) == 3
    assert result["return_mean"] == pytest.approx(np.mean(result["returns"]))


@pytest.mark.parametrize("args, message", [
    (["--env", "CartPole-v1"], "Discrete action space"),
    (["--env", "Pendulm-v1"], "did you mean Pendulum-v1"),
    (["--actor_lr", "-0.1"], "actor_lr must be > 0"),
    (["--tau", "0"], "tau must be in (0, 1]"),
    (["--tau", "1.5"], "tau must be in (0, 1]"),
    (["--gamma", "1.01"], "gamma must be in [0, 1]"),
    (["--batch_size", "512", "--replay_size", "100"], "larger than replay_size"),
    (["--seed", "x"], "invalid int value"),
    (["--actor_hidden", "a,b"], "layer sizes"),
    (["--exploration_noise", "pink"], "exploration_noise must be ou, gaussian, none or param"),
    (["--preset", "ddpg-fast"], "invalid choice"),
    (["--bf16", "true", "--fast_update", "false"], "bf16 runs on the fast path only"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert exit_status(["train", "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("dpgkit: error: ")
    assert not (tmp_path / "run").exists(), "bad input must not leave a run directory behind"


def exit_status(argv: list[str]) -> int:
    """main()'s exit status, whether it returns it or argparse raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code)


def test_unbounded_action_box_is_refused():
    env = CountingEnv()
    env.action_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,))
    with pytest.raises(EnvError, match="infinite bounds"):
        check_spaces(env, "Unbounded-v0")


def test_existing_run_directory_is_refused_and_kept(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "precious.txt").write_text("keep me")
    assert main(["train", "--out", str(run), *FAST]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (run / "precious.txt").read_text() == "keep me"


def test_unwritable_output_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", "--out", str(blocker / "run"), *FAST]) == 2
    assert "cannot write the run directory" in capsys.readouterr().err


def test_eval_of_a_directory_without_checkpoint(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_cli_error_has_no_traceback():
    result = run_cli("train", "--env", "CartPole-v1", "--no-progress")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("dpgkit: error:")


def test_help_lists_every_config_field_with_its_doc():
    from dpgkit.config_dict import field_docs

    result = run_cli("train", "--help")
    text = " ".join(result.stdout.split())
    for name, doc in field_docs().items():
        if name != "preset":
            assert f"--{name}" in text
            assert " ".join(doc.split())[:30] in text


def test_python_dash_m_dpgkit_is_the_dpgkit_command():
    result = subprocess.run([sys.executable, "-m", "dpgkit", "train", "--preset", "nope"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("dpgkit: error: argument --preset: invalid choice: 'nope'")


def test_seeds_run_in_parallel_and_plot_draws_their_band(tmp_path):
    out = tmp_path / "five"
    result = run_cli("train", "--seeds", "0-1", "--out", str(out), *FAST)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and set(summary["per_seed"]) == {"0", "1"}
    assert summary["eval_return_mean"] == pytest.approx(np.mean(list(summary["per_seed"].values())))
    for seed in (0, 1):
        assert json.loads((out / f"seed{seed}" / "config.json").read_text())["seed"] == seed
    plotted = run_cli("plot", str(out), str(out / "seed0"), "-o", str(tmp_path / "curves.png"),
                      "--reference", "HalfCheetah")
    assert plotted.returncode == 0, plotted.stderr
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert (tmp_path / "curves.svg").read_text().lstrip().startswith("<?xml")


def test_a_diverging_seed_is_reported_not_fatal(tmp_path):
    out = tmp_path / "online"
    result = run_cli("train", "--preset", "dpg-online", "--seeds", "0-1", "--steps", "300",
                     "--out", str(out), "--no-progress")
    assert result.returncode == 3, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["diverged"]) == {"0", "1"}
    assert all("became" in why for why in summary["diverged"].values())
    plotted = run_cli("plot", str(out), "-o", str(tmp_path / "p.png"))
    assert plotted.returncode == 2 and "no 'eval_return_mean' values" in plotted.stderr


def test_the_curve_of_a_run_stopped_before_any_episode_ended_says_so(tmp_path, recwarn):
    """curve.png of a run with no rows yet: a PNG with a note instead of empty axes, no warning
    (matplotlib warns about a legend without entries)."""
    from dpgkit.metrics import COLUMNS
    from dpgkit.plotting import plot_curve

    (tmp_path / "metrics.csv").write_text(",".join(COLUMNS) + "\n")
    plot_curve(tmp_path / "metrics.csv", tmp_path / "curve.png", "empty")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [w for w in recwarn if "legend" in str(w.message)]
