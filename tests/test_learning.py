"""Learning checks: the default preset solves Pendulum-v1 (mean eval return >= -200).

Seed 0 runs in the default suite (about two minutes on a 2-core machine); the other seeds are
marked slow and run with `make test-slow`.
"""

import pytest

from dpgkit.config import preset_config
from dpgkit.train import train

SOLVED = -200.0


def _solves_pendulum(tmp_path, seed: int) -> None:
    summary = train(preset_config("ddpg", seed=seed), tmp_path / "run", progress=False)
    assert summary["env_steps"] == 20_000
    assert summary["eval_episodes"] == 10
    assert summary["eval_return_mean"] >= SOLVED, summary


def test_default_preset_solves_pendulum_seed_0(tmp_path):
    _solves_pendulum(tmp_path, 0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_default_preset_solves_pendulum_other_seeds(tmp_path, seed):
    _solves_pendulum(tmp_path, seed)
