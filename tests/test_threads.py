"""torch's thread count against the cores: a warning where threads would wait for cores, and
``--seeds`` running as many runs at a time as the cores hold."""

import warnings

import pytest
import torch

from dpgkit import seeds, threads
from dpgkit.errors import DpgkitWarning
from dpgkit.loop import Trainer
from dpgkit.presets import preset_config


@pytest.fixture
def cores(monkeypatch):
    """cores(n): this machine has n cores, whatever it really has; torch's threads are restored
    after the test."""
    def have(n: int) -> None:
        for module in (threads, seeds):
            monkeypatch.setattr(module, "usable_cores", lambda: n)
    before = torch.get_num_threads()
    yield have
    torch.set_num_threads(before)


@pytest.fixture
def two_cores(cores):
    cores(2)


def test_usable_cores_is_at_least_one():
    assert threads.usable_cores() >= 1


def test_too_many_threads_names_the_count_the_cores_and_what_to_give(two_cores):
    assert threads.too_many_threads(1) is None and threads.too_many_threads(2) is None
    assert threads.too_many_threads(1, processes=2) is None
    assert threads.too_many_threads(1, processes=5) is None  # they share the cores, no waiting
    assert threads.too_many_threads(3) == (
        "torch_threads: 3 threads on 2 cores: threads that wait for busy cores slow a run many "
        "times over; give --torch_threads 2")
    assert threads.too_many_threads(2, processes=2) == (
        "torch_threads: 2 runs x 2 threads on 2 cores: threads that wait for busy cores slow a "
        "run many times over; give --workers 1 or --torch_threads 1")
    assert threads.too_many_threads(2, processes=3).endswith("give --workers 1")


def test_a_run_asking_for_more_threads_than_cores_gets_them_and_a_warning(two_cores, tmp_path):
    config = preset_config("ddpg", total_env_steps=10, warmup_steps=5, torch_threads=3)
    with pytest.warns(DpgkitWarning, match="3 threads on 2 cores"):
        Trainer(config, tmp_path / "run").close()
    assert torch.get_num_threads() == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # two threads on two cores: no warning
        Trainer(preset_config("ddpg", torch_threads=2), tmp_path / "run2").close()


def test_seeds_run_as_many_at_a_time_as_the_cores_hold(cores):
    cores(4)
    assert seeds.default_workers(5, 1) == 4
    assert seeds.default_workers(5, 2) == 2
    assert seeds.default_workers(3, 1) == 3
    assert seeds.default_workers(5, 8) == 1  # one run at a time (its own warning says the rest)
