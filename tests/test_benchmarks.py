"""The speed benchmark's own arithmetic: the FLOPs it charges an update with, the split of an
update's time it reports, and that its update measurement runs. (It times nothing here: timing
belongs in the benchmark, never in a test.)"""

import argparse
import importlib.util
from pathlib import Path

import pytest

SPEED = Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("speed", SPEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_update_costs_the_flops_of_its_layer_shapes(speed):
    """HalfCheetah (obs 17, action 6), 256-256, batch 256, counted by hand in multiply-adds per
    sample: a forward of the actor is A, of the critic C; a weight gradient costs a forward; the
    input gradients of the layers above the first cost their forwards."""
    actor = 17 * 256 + 256 * 256 + 256 * 6
    critic = 23 * 256 + 256 * 256 + 256 * 1
    macs = (2 * actor + 2 * critic  # target actor, target critic; actor at s, critic at (s, a)
            + critic + (256 * 256 + 256 * 1)  # critic loss: every dW, the dx of layers 2 and 3
            + critic  # critic at (s, mu(s))
            + critic  # back to the action input: the dx of every layer (the first included)
            + actor + (256 * 256 + 256 * 6))  # actor: every dW, the dx of layers 2 and 3
    assert speed.ddpg_update_flops(17, 6, (256, 256), (256, 256), 256) == 2 * 256 * macs
    assert len(speed.ddpg_update_gemms(17, 6, (256, 256), (256, 256), 256)) == 28


def test_the_update_report_splits_an_update_into_products_fixed_cost_and_the_rest(speed,
                                                                                  monkeypatch):
    record = {"update_s_with_sampling": 0.0045, "update_s_without_sampling": 0.004,
              "sample_s": 8e-5, "flops": 361_234_432, "gemm_mix_s": 0.002,
              "gemm_mix_gflops": 180.6, "square_gflops": 190.0, "torch_threads": 1,
              "tiny_update_s": 0.0005}
    monkeypatch.setattr(speed, "run_child", lambda spec: record)
    args = argparse.Namespace(threads=[1], hidden=[256, 256], batch_size=256,
                              buffer_size=1_000_000, updates=10)
    report = speed.update_section(args)
    # 4000 us = 2000 of products + 500 fixed + 1500 of the rest; 2000 / 4000 and 2000 / 3500
    assert "| 1 | fast (default) | 4000 | 2000 | 500 | 1500 | 50% | 57% |" in report
    assert "| 1 (1) | fast (default) | 222.2 | 250.0 | 80 | 361.2 | 90.3 | 180.6 | 50% |" \
        in report


def test_the_update_measurement_runs_and_charges_the_flops_of_its_shapes(speed):
    record = speed.measure_update({"threads": 1, "hidden": [16, 16], "batch_size": 16,
                                   "buffer_size": 2000, "updates": 3, "path": "fast"})
    assert record["flops"] == speed.ddpg_update_flops(17, 6, (16, 16), (16, 16), 16)
    assert record["gemm_mix_gflops"] == pytest.approx(
        record["flops"] / record["gemm_mix_s"] / 1e9)
    assert record["torch_threads"] == 1
    assert all(record[key] > 0 for key in ("update_s_with_sampling", "update_s_without_sampling",
                                          "sample_s", "tiny_update_s", "square_gflops"))
