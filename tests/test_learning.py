"""Learning checks: the default preset solves Pendulum-v1 (mean eval return >= -200 over 10
episodes from random starts) within 20,000 env steps.

Seed 0 runs in the default suite through the Python API and stops at the first evaluation that
solves it (``target_return``; 4,000 steps, under a minute on a 2-core machine); the other seeds
train all 20,000 steps through `train`, are held to other start states too, and are marked slow
(`make test-slow`).
"""

import json

import pytest

import dpgkit
from dpgkit.presets import preset_config
from dpgkit.train import train

SOLVED = -200.0


def test_python_api_solves_pendulum_seed_0(tmp_path):
    dpgkit.DDPG("Pendulum-v1", seed=0, run_dir=tmp_path / "run", target_return=SOLVED).learn(
        20_000)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["eval_return_mean"] >= SOLVED and summary["eval_episodes"] == 10, summary
    assert summary["target_reached_at_env_steps"] == summary["env_steps"] <= 20_000


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_default_preset_solves_pendulum_other_seeds(tmp_path, seed):
    agent = dpgkit.DDPG("Pendulum-v1", seed=seed, run_dir=tmp_path / "run").learn(20_000)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["env_steps"] == 20_000 and summary["eval_return_mean"] >= SOLVED, summary
    assert agent.evaluate(episodes=10, seed=123).mean() >= SOLVED  # other start states too


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_td3_solves_pendulum_within_15000_steps(tmp_path, seed):
    summary = train(preset_config("td3", seed=seed, total_env_steps=15_000), tmp_path / "run",
                    progress=False)
    assert summary["eval_return_mean"] >= SOLVED, summary
