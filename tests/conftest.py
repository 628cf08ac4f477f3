import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import toy_envs  # noqa: E402,F401  (registers dpgkit-test/Counting-v0)

from dpgkit.config import DDPGConfig  # noqa: E402
from dpgkit.presets import preset_config  # noqa: E402


@pytest.fixture
def tiny_config() -> DDPGConfig:
    """A fast Pendulum config: small nets and batches, short warm-up, quick evaluations."""
    return preset_config("ddpg", total_env_steps=400, warmup_steps=100, batch_size=32,
                         actor_hidden=(32, 32), critic_hidden=(32, 32), eval_every_steps=200,
                         eval_episodes=2)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished run of ``test_bad_input.FAST`` (Pendulum, 300 env steps, checkpoints of env
    steps 200 and 300), made once per test module."""
    from test_bad_input import FAST

    from dpgkit.cli import main

    run_dir = tmp_path_factory.mktemp("runs") / "done"
    assert main(["train", "--out", str(run_dir), *FAST]) == 0
    return run_dir


def _benchmark_script(name: str) -> ModuleType:
    """benchmarks/<name>.py imported as a module (the benchmarks are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def speed() -> ModuleType:
    """benchmarks/speed.py."""
    return _benchmark_script("speed")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/returns.py."""
    return _benchmark_script("returns")


@pytest.fixture(scope="module")
def saturation() -> ModuleType:
    """benchmarks/actor_saturation.py."""
    return _benchmark_script("actor_saturation")
