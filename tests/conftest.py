import importlib
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


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _benchmarks_importable() -> None:
    """Put the benchmarks directory on sys.path (once, last, so it shadows nothing installed),
    as it is when a script runs, so that the modules a script imports (``speed_common``, ...)
    load as themselves: their fixtures return the very objects the script uses, and a test that
    patches one of them patches what the script calls."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.append(str(BENCHMARKS))


def _benchmark_script(name: str) -> ModuleType:
    """benchmarks/<name>.py imported as a module (the benchmarks are scripts, not a package)."""
    _benchmarks_importable()
    path = BENCHMARKS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _benchmark_module(name: str) -> ModuleType:
    """benchmarks/<name>.py, a module the benchmark scripts import, as they import it."""
    _benchmarks_importable()
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def speed() -> ModuleType:
    """benchmarks/speed.py."""
    return _benchmark_script("speed")


def _module_fixture(name: str, what: str):
    """A module-scoped fixture of benchmarks/<name>.py (:func:`_benchmark_module`)."""
    def fixture() -> ModuleType:
        return _benchmark_module(name)

    fixture.__doc__ = f"benchmarks/{name}.py: {what}."
    return pytest.fixture(scope="module", name=name)(fixture)


speed_common = _module_fixture("speed_common", "what the speed benchmark's sections share")
speed_learning = _module_fixture("speed_learning", "the speed benchmark's section 1")
speed_gemms = _module_fixture("speed_gemms", "the matrix products of an update and their rate")
speed_update = _module_fixture("speed_update", "the speed benchmark's section 2")
speed_memory = _module_fixture("speed_memory", "the speed benchmark's section 3")
speed_td7 = _module_fixture("speed_td7", "the speed benchmark's section td7")


returns_jobs = _module_fixture("returns_jobs", "the returns benchmark's runs, their states and "
                               "commands")
returns_records = _module_fixture("returns_records", "a run's record, read from its run directory")
returns_report = _module_fixture("returns_report", "the returns benchmark's tables and figure")


@pytest.fixture(scope="module")
def saturation() -> ModuleType:
    """benchmarks/actor_saturation.py."""
    return _benchmark_script("actor_saturation")


@pytest.fixture(scope="module")
def checkpoint_rule() -> ModuleType:
    """benchmarks/checkpoint_rule.py."""
    return _benchmark_script("checkpoint_rule")
