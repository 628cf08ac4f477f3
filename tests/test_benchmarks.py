"""The speed benchmark's own arithmetic and bookkeeping: the FLOPs it charges an update with,
the split of an update's time it reports, that its measurements run, that it runs to the end on
a CPU without native bfloat16 and past a failed measurement, that each section reaches the
output file as soon as it is measured, and how it marks runs that shared their cores. (It times
nothing here: timing belongs in the benchmark, never in a test.)"""

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dpgkit
import dpgkit.torchops


def test_an_update_costs_the_flops_of_its_layer_shapes(speed_gemms):
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
    assert speed_gemms.ddpg_update_flops(17, 6, (256, 256), (256, 256), 256) == 2 * 256 * macs
    assert len(speed_gemms.ddpg_update_gemms(17, 6, (256, 256), (256, 256), 256)) == 28


UPDATE_RECORD = {"update_s_with_sampling": 0.0045, "update_s_without_sampling": 0.004,
                 "sample_s": 8e-5, "flops": 361_234_432, "gemm_mix_s": 0.002,
                 "gemm_mix_gflops": 180.6, "square_gflops": 190.0, "torch_threads": 1,
                 "tiny_update_s": 0.0005, "seconds": 2.0, "cpu_share": 0.97, "load_start": 0.5,
                 "load_end": 0.75}
PRIMITIVE = "RuntimeError: could not create a primitive descriptor"


def update_args(**changes):
    """Section 2's arguments, at HalfCheetah's sizes unless ``changes`` says otherwise."""
    return argparse.Namespace(**{"threads": [1], "hidden": [256, 256], "batch_size": 256,
                                 "buffer_size": 1_000_000, "updates": 10, **changes})


def test_the_update_report_splits_an_update_into_products_fixed_cost_and_the_rest(
        speed_common, speed_update, monkeypatch):
    """The split of one update's time is worked out from its record: the products, the fixed
    part (the 8-8 update) and the rest, and the fractions reached; the cpu share and load of its
    process are shown beside it."""
    monkeypatch.setattr(speed_common, "run_child", lambda spec: UPDATE_RECORD)
    report = speed_update.update_section(update_args())
    # 4000 us = 2000 of products + 500 fixed + 1500 of the rest; 2000 / 4000 and 2000 / 3500
    assert "| 1 | fast (default) | 4000 | 2000 | 500 | 1500 | 50% | 57% |" in report
    assert ("| 1 (1) | fast (default) | 222.2 | 250.0 | 80 | 361.2 | 90.3 | 180.6 | 50% | "
            "190.0 | 0.97 | 0.50→0.75 |") in report


def test_without_native_bf16_the_update_section_skips_bf16_and_says_why(
        speed_common, speed_gemms, speed_update, monkeypatch):
    """On a CPU where oneDNN has no native bfloat16 the update section times the fast and the
    reference path, never the bf16 one (which would die there), and says in one line that bf16
    was skipped and why. The measurements really run, at tiny sizes and with each product
    called once instead of timed."""
    monkeypatch.setattr(dpgkit.torchops, "native_bf16", lambda: False)
    monkeypatch.setattr(speed_gemms, "seconds_per_call", lambda fn, **_: (fn(), 1e-3)[1])
    paths = []

    def in_process(spec):
        paths.append(spec["path"])
        return speed_update.measure_update(spec)

    monkeypatch.setattr(speed_common, "run_child", in_process)
    report = speed_update.update_section(update_args(hidden=[16, 16], batch_size=16,
                                                     buffer_size=2000, updates=3))
    assert paths == ["fast", "reference"]
    assert speed_common.BF16_SKIPPED in report
    assert "needs AVX-512 BF16 or AMX" in speed_common.BF16_SKIPPED
    for start in ("| 1 (1) | ", "| 1 | "):  # the rows of the two tables
        rows = [line for line in report.splitlines() if line.startswith(start)]
        assert [row.split(" | ")[1] for row in rows] == ["fast (default)", "reference (autograd)"]


def test_a_failed_measurement_is_a_row_with_its_error_and_the_others_still_run(
        speed_common, speed_update, monkeypatch):
    """A child that fails (here the bf16 path, as on a CPU whose oneDNN cannot make the
    primitive) becomes a row saying so with its error's last line; the paths after it run."""
    monkeypatch.setattr(dpgkit.torchops, "native_bf16", lambda: True)
    monkeypatch.setattr(speed_common, "run_child", lambda spec: {"failed": PRIMITIVE}
                        if spec["path"] == "bf16" else UPDATE_RECORD)
    report = speed_update.update_section(update_args())
    assert f"| 1 | fast, `bf16` (opt-in) | failed: {PRIMITIVE} |" in report
    assert "| 1 (1) | reference (autograd) | 222.2 |" in report
    assert "| 1 | reference (autograd) | 4000 |" in report


def test_a_failed_child_reports_the_last_line_of_its_error(speed_common):
    """run_child catches a child that dies and returns the last line of its error."""
    assert speed_common.run_child({"kind": "no such measurement"}) == {
        "failed": "KeyError: 'no such measurement'"}


def test_the_machine_line_names_the_widest_extension_and_reads_without_cpuinfo(
        speed_common, monkeypatch):
    """One reader of /proc/cpuinfo for both benchmarks: model, cores and the widest extension
    (AMX over AVX-512 over AVX2), and a line all the same on a system without the file."""
    cpuinfo = {"model name": "Some CPU", "flags": "fpu sse2 avx2 avx512f avx512_bf16"}
    monkeypatch.setattr(speed_common, "_cpuinfo_field", cpuinfo.get)
    monkeypatch.setattr(speed_common.os, "cpu_count", lambda: 2)
    assert speed_common.machine() == "Some CPU, 2 cores, AVX-512 BF16"
    cpuinfo["flags"] = "fpu avx2 amx_tile avx512f"
    assert speed_common.vector_extension() == "AMX"
    cpuinfo["flags"] = "fpu sse2"
    assert speed_common.vector_extension() == "no AVX2"

    def missing(self, *args, **kwargs):
        raise FileNotFoundError("/proc/cpuinfo")

    monkeypatch.undo()
    monkeypatch.setattr(speed_common.Path, "read_text", missing)
    assert speed_common._cpuinfo_field("flags") is None
    assert speed_common.vector_extension() == "no AVX2"
    assert speed_common.cpu_model()  # platform's guess, never empty


def test_a_ratio_with_a_run_that_shared_its_cores_is_marked(speed_common):
    """A run with less than CLEAN_CPU_SHARE of its cores marks what is made with it, with the
    lowest share; runs that had their cores are not marked."""
    assert (speed_common.shared_mark([{"cpu_share": 1.0}, {"cpu_share": 0.5}])
            == " (shared: cpu 0.50)")
    assert speed_common.shared_mark([{"cpu_share": 1.0}, {"cpu_share": 0.95}]) == ""


def learning_record(steps_per_s, cpu_share):
    """A canned record of one learning run."""
    return {"steps_per_s": steps_per_s, "torch_threads": 1, "cpu_share": cpu_share,
            "load_start": 1.0, "load_end": 1.25, "seconds": 1.0, "steps": 10, "updates": 10}


def test_the_learning_table_marks_pairs_that_shared_their_cores(speed, speed_common,
                                                                 speed_learning, monkeypatch):
    """Section 1 on canned records: a pair whose SB3 run had half its cores gets its ratio
    marked shared; one where both runs had them is clean; a failed bf16 run is a cell with its
    error while the dpgkit/SB3 pairs keep their numbers."""
    monkeypatch.setattr(dpgkit.torchops, "native_bf16", lambda: True)
    shares = iter([1.0, 0.5, 1.0, 1.0] + [1.0] * 4)  # Pendulum: dpgkit, SB3 twice; HalfCheetah

    def canned(spec):
        if spec.get("bf16"):
            return {"failed": PRIMITIVE}
        return learning_record(200.0 if spec["kind"] == "dpgkit" else 100.0, next(shares))

    monkeypatch.setattr(speed_common, "run_child", canned)
    # --sections update: parse_args asks for SB3 only where the learn section is to run
    args = speed.parse_args(["--sections", "update", "--envs", "Pendulum-v1,HalfCheetah-v5",
                             "--algos", "ddpg", "--threads", "1", "--bf16"])
    rows = speed_learning.learning_section(args).splitlines()
    pendulum, cheetah = (next(r for r in rows if r.startswith(f"| {env} ")) for env in
                         ("Pendulum-v1", "HalfCheetah-v5"))
    assert "| 200.0, 200.0 | 100.0, 100.0 | 200.0 | 100.0 | 2.00 (shared: cpu 0.50) |" \
        in pendulum
    assert f"| failed: {PRIMITIVE} | - | 1.00/0.50/-, 1.00/1.00/- |" in pendulum
    assert "| 2.00 |" in cheetah and "shared" not in cheetah
    assert "1.00→1.25/1.00→1.25/-" in cheetah


def test_each_section_reaches_the_output_file_before_the_next_runs(speed, speed_common,
                                                                    speed_memory, monkeypatch,
                                                                    tmp_path):
    """After each section the report so far is written: a benchmark that dies in the memory
    section leaves the header and the update section in --out, marked incomplete."""
    def dies(args):
        raise RuntimeError("killed in section 3")

    monkeypatch.setattr(speed_common, "run_child", lambda spec: UPDATE_RECORD)
    monkeypatch.setattr(speed_memory, "memory_section", dies)
    out = tmp_path / "speed.md"
    with pytest.raises(RuntimeError, match="killed in section 3"):
        speed.main(["--sections", "update,memory", "--threads", "1", "--out", str(out)])
    text = out.read_text()
    assert text.startswith("# dpgkit speed benchmark")
    assert "## 2. The DDPG update alone" in text and "| 1 (1) | fast (default) |" in text
    assert "Incomplete: sections update of update,memory so far." in text
    assert "## 3." not in text


def test_the_memory_measurement_fills_the_buffer_and_traces_a_smaller_fill(
        speed_common, speed_memory, monkeypatch):
    """The memory section at a small capacity, its child run in this process: 3,000 transitions
    go in through add (3 episode ends cost 3 rows of 3,001: the 2 oldest are overwritten), the
    table shows it, and the traced fill is of at most TRACED_CAPACITY transitions."""
    monkeypatch.setattr(speed_common, "run_child", speed_memory.measure_replay_memory)
    report = speed_memory.memory_section(argparse.Namespace(buffer_size=3000))
    assert "| transitions held after the fill (one row per episode end) | 2,998 |" in report
    assert (f"in a buffer of {min(3000, speed_memory.TRACED_CAPACITY):,} filled the same way"
            in report)


def test_the_update_measurement_runs_and_charges_the_flops_of_its_shapes(speed_gemms,
                                                                         speed_update):
    """measure_update at tiny sizes, really timed: its FLOPs are those of its layer shapes and
    its rate is those FLOPs over its time; its timing window records a cpu share and loads."""
    record = speed_update.measure_update({"threads": 1, "hidden": [16, 16], "batch_size": 16,
                                          "buffer_size": 2000, "updates": 3, "path": "fast"})
    assert record["flops"] == speed_gemms.ddpg_update_flops(17, 6, (16, 16), (16, 16), 16)
    assert record["gemm_mix_gflops"] == pytest.approx(
        record["flops"] / record["gemm_mix_s"] / 1e9)
    assert record["torch_threads"] == 1
    assert all(record[key] > 0 for key in ("update_s_with_sampling", "update_s_without_sampling",
                                          "sample_s", "tiny_update_s", "square_gflops",
                                          "cpu_share"))
    assert {"load_start", "load_end"} <= set(record)


def test_the_saturation_probe_reads_the_input_of_the_actors_tanh(saturation, tmp_path):
    """u is what the actor's tanh receives (tanh(u) is the agent's action), traced at every
    chunk of a short run, with the updates each chunk ran."""
    rows = saturation.trace("td3", "Pendulum-v1", 0, 200, 100, 3, tmp_path / "run",
                            warmup_steps=50, batch_size=16, actor_hidden=(8,),
                            critic_hidden=(8,))
    assert [row[0] for row in rows] == [100, 200] and 0 < rows[0][1] < rows[1][1]
    assert all(low <= mean <= high for _, _, mean, low, high in rows)
    model = dpgkit.load(tmp_path / "run")
    obs = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    u = saturation.pre_tanh(model.agent, obs)
    assert u.shape == (4, 1)
    np.testing.assert_allclose(np.tanh(u), model.agent.deployed_act(obs), atol=1e-6)


@pytest.mark.parametrize("script", ["speed.py", "returns.py", "actor_saturation.py",
                                    "scaling.py", "checkpoint_rule.py"])
def test_each_benchmark_starts_as_the_script_it_is(script, tmp_path):
    """``python benchmarks/X.py`` from anywhere finds the modules beside it (each benchmark is
    split into a few; they are scripts, not a package) and prints its usage."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / script
    done = subprocess.run([sys.executable, str(path), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")


@pytest.mark.parametrize("actor_step", [True, False])
def test_a_td7_update_costs_the_flops_autograd_multiplies(speed_td7, actor_step):
    """td7_update_gemms, at sizes that tell every layer apart, charges exactly the matrix-product
    FLOPs torch's own counter sees in one real TD7Agent.update (with and without its actor
    step: the second and the third update of the policy_delay 2 preset)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dpgkit.batch import Batch
    from dpgkit.presets import preset_config
    from dpgkit.td7 import TD7Agent

    obs_dim, action_dim, zs, hidden, encoder, batch = 5, 3, 6, 7, 9, 4
    config = preset_config("td7", actor_hidden=(hidden,), critic_hidden=(hidden,), zs_dim=zs,
                           encoder_hidden=encoder, batch_size=batch)
    agent = TD7Agent(obs_dim, action_dim, config)
    rng = np.random.default_rng(0)
    obs, action, reward, next_obs = (
        torch.as_tensor(rng.standard_normal(shape), dtype=torch.float32)
        for shape in ((batch, obs_dim), (batch, action_dim), (batch,), (batch, obs_dim)))
    data = Batch(obs, action.clamp(-1, 1), reward, next_obs, torch.zeros(batch))
    agent.update(data)  # update 1: no actor step
    if not actor_step:
        agent.update(data)  # update 2 steps the actor, 3 does not
    with FlopCounterMode(display=False) as counter:
        agent.update(data)
    expected = speed_td7.td7_update_gemms(obs_dim, action_dim, zs, hidden, encoder, batch,
                                          actor_step)
    assert counter.get_total_flops() == sum(g.flops for g in expected)


TD7_RECORD = {"update_s_with_sampling": 0.045, "update_s_without_sampling": 0.05,
              "tiny_update_s": 0.004, "flops": 2_682_847_232, "gemm_mix_s": 0.03,
              "gemm_mix_gflops": 89.4, "torch_threads": 1, "seconds": 30.0, "cpu_share": 0.98,
              "load_start": 0.1, "load_end": 0.2,
              "operators": [{"name": "aten::addmm", "share": 0.4, "calls": 50.0},
                            {"name": "all others", "share": 0.6, "calls": 1900.0}]}


def test_the_td7_report_gives_the_ceilings_of_a_hand_written_path(speed_common, speed_td7,
                                                                    monkeypatch):
    """50,000 us an update, 30,000 of products alone, 4,000 fixed: at most 50/46 = x1.09
    without the fixed part and 50/30 = x1.67 at the products' rate; the rate reached is
    2.68 GFLOP / 0.05 s = 53.7 GFLOP/s, 60% of 89.4; the operators are tabled."""
    monkeypatch.setattr(speed_common, "run_child", lambda spec: TD7_RECORD)
    report = speed_td7.td7_section(argparse.Namespace(threads=[1], td7_buffer_size=100_000,
                                                      td7_updates=100))
    assert "| 1 | 50000 | 30000 | 4000 | 16000 | x1.09 | x1.67 |" in report
    assert "| 1 (1) | 22.2 | 20.0 | 2683 | 53.7 | 89.4 | 60% | 0.98 | 0.10→0.20 |" in report
    assert "| `aten::addmm` | 40% | 50.0 |" in report
    assert "**3248.10**" in report and "after pass 6, 2117.60 MFLOP" in report  # TD7's sizes


def test_the_td7_measurement_runs_and_charges_the_flops_of_its_shapes(speed_gemms, speed_td7,
                                                                      monkeypatch):
    """measure_td7_update at width 16 and batch 16, really timed (each product for a round of
    1 ms, not 50: the test is about what is measured, not how well): its FLOPs are the mean of
    an update with and without the actor step, its rate those FLOPs over its products' time,
    and its profile names the matrix products."""
    timer = speed_gemms.seconds_per_call
    monkeypatch.setattr(speed_gemms, "seconds_per_call",
                        lambda fn: timer(fn, min_seconds=1e-3, rounds=1))
    record = speed_td7.measure_td7_update({"threads": 1, "buffer_size": 300, "updates": 4,
                                           "width": 16, "batch_size": 16})
    cycle = speed_td7.td7_cycle_gemms(17, 6, 16, 16, 16, 16, policy_delay=2)
    assert record["flops"] == sum(g.flops for g in cycle) / 2
    assert record["gemm_mix_gflops"] == pytest.approx(
        record["flops"] / record["gemm_mix_s"] / 1e9)
    assert all(record[key] > 0 for key in ("update_s_with_sampling", "update_s_without_sampling",
                                          "tiny_update_s", "cpu_share"))
    assert "aten::addmm" in {op["name"] for op in record["operators"]}
    assert sum(op["share"] for op in record["operators"]) == pytest.approx(1.0)
