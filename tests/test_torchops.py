"""The private torch operators (dpgkit/torchops.py): each one's fallback computes what the operator
computes, a failing probe switches to the fallback, the whole fast path runs on the fallbacks
alone, and ``--bf16 true`` trains on a CPU whose oneDNN has no bfloat16 kernels."""

import os
import platform
import subprocess
import sys

import pytest
import torch

from dpgkit import torchops
from dpgkit.agents import make_agent
from dpgkit.presets import preset_config
from tests.test_fastpath import ACTION_DIM, OBS_DIM, batches


def test_every_operator_is_listed_in_the_module_docstring():
    for name in torchops.PROBES:
        assert f"``{name}``" in torchops.__doc__, name


def test_disabled_switches_an_operator_off_and_back_on():
    before = torchops.report()
    with torchops.disabled(*torchops.PROBES):
        assert not any(torchops.report().values())
    assert torchops.report() == before
    with pytest.raises(KeyError, match="no private operator named nope"):
        with torchops.disabled("nope"):
            pass


def test_a_probe_that_fails_means_the_fallback(monkeypatch):
    """A torch without the operator (or a CPU without its kernel) raises in the probe; dpgkit then
    answers False and never calls it."""
    def missing() -> None:
        raise AttributeError("module 'torch' has no attribute '_foreach_lerp_'")

    monkeypatch.setitem(torchops.PROBES, "foreach_lerp", missing)
    monkeypatch.setattr(torchops, "_answers", {})
    assert not torchops.has("foreach_lerp")
    monkeypatch.setattr(torch, "_foreach_lerp_", missing)  # would raise if it were called
    target = [torch.zeros(3)]
    torchops.lerp_(target, [torch.ones(3)], 0.25)
    assert target[0].tolist() == [0.25] * 3


def test_the_environment_variable_switches_operators_off():
    code = ("from dpgkit import torchops; r = torchops.report(); "
            "print(r['fused_adam'], r['tanh_backward'])")
    for value, expected in (("fused_adam", "False True"), ("all", "False False")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "DPGKIT_NO_PRIVATE_OPS": value}, check=True)
        assert out.stdout.split() == expected.split()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_each_fallback_computes_what_its_operator_computes(dtype):
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(6, 5, generator=g), torch.randn(4, 5, generator=g),
               torch.randn(4, generator=g))
    grad, y = torch.randn(6, 5, generator=g), torch.tanh(torch.randn(6, 5, generator=g))
    x, w, b = x.to(dtype), w.to(dtype), b.to(dtype)
    targets, sources = [torch.randn(3, generator=g), torch.randn(2, 2, generator=g)], [
        torch.randn(3, generator=g), torch.randn(2, 2, generator=g)]

    def results() -> list[torch.Tensor]:
        moved = [t.clone() for t in targets]
        torchops.lerp_(moved, sources, 0.3)
        return [torchops.relu_backward_(grad.clone(), x.float()),
                torchops.tanh_backward(grad, y), torchops.linear_relu(x, w, b).float(), *moved]

    with_operators = results()
    with torchops.disabled(*torchops.PROBES):
        with_fallbacks = results()
    tolerance = {} if dtype == torch.float32 else {"rtol": 2e-2, "atol": 2e-2}
    for a, b_ in zip(with_operators, with_fallbacks, strict=True):
        torch.testing.assert_close(a, b_, **tolerance)


@pytest.mark.parametrize("preset", ["ddpg", "td3"])
def test_the_fast_path_on_fallbacks_alone_computes_the_autograd_update(preset):
    """Every private operator missing: the hand-written update still equals autograd's."""
    base = dict(actor_hidden=(16, 12), critic_hidden=(16, 12), final_init=0.0, seed=3,
                actor_lr=1e-2, critic_lr=1e-2)
    with torchops.disabled(*torchops.PROBES):
        fast = make_agent(OBS_DIM, ACTION_DIM, preset_config(preset, **base))
        autograd = make_agent(OBS_DIM, ACTION_DIM,
                              preset_config(preset, **base, fast_update=False))
        assert not fast.actor_optimizer.param_groups[0]["fused"]
        for batch in batches(4, weighted=True):
            fast.update(batch)
            autograd.update(batch)
        assert not any(s.fused for s in fast.gradient_steps._steppers.values())
    for name, module in fast.modules().items():
        for value, expected in zip(module.state_dict().values(),
                                   autograd.modules()[name].state_dict().values(), strict=True):
            torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-5, msg=name)


def test_a_step_hook_sends_the_step_through_the_optimiser():
    """With a hook registered, or a torch that hides whether one is, the optimiser's own step
    runs (so the hook fires) instead of the fused kernel."""
    agent = make_agent(OBS_DIM, ACTION_DIM, preset_config("ddpg", actor_hidden=(8,),
                                                          critic_hidden=(8,)))
    calls = []
    agent.critic_optimizer.register_step_pre_hook(lambda *_: calls.append(1))
    agent.update(batches(1, weighted=False)[0])
    assert calls == [1]
    # no hook on the actor's optimiser: False wherever torch exposes its hooks
    assert torchops.has_step_hooks(agent.actor_optimizer) is not torchops.has("optimizer_hooks")
    with torchops.disabled("optimizer_hooks"):
        assert torchops.has_step_hooks(agent.actor_optimizer) is True


def test_a_checkpoint_of_fused_adam_loads_where_adam_is_not_fused(tmp_path):
    """The optimiser's kernel is the machine's choice: param_groups saved with fused=True load
    into an Adam built without it, and it keeps stepping."""
    from dpgkit.checkpoint import agent_tensors, load_agent_tensors

    if not torchops.has("fused_adam"):
        pytest.skip("this torch has no fused Adam on the CPU (torch._fused_adam_)")
    config = preset_config("ddpg", actor_hidden=(8,), critic_hidden=(8,))
    saved = make_agent(OBS_DIM, ACTION_DIM, config)
    saved.update(batches(1, weighted=False)[0])
    tensors, meta = agent_tensors(saved)
    assert meta["param_groups"]["actor"][0]["fused"]
    with torchops.disabled("fused_adam"):
        loaded = make_agent(OBS_DIM, ACTION_DIM, config)
        load_agent_tensors(loaded, tensors, meta)
        assert not loaded.actor_optimizer.param_groups[0]["fused"]
        loaded.update(batches(1, weighted=False)[0])


def test_bf16_trains_where_onednn_has_no_bfloat16_kernels(tmp_path):
    """oneDNN capped at AVX2 lacks bfloat16 kernels as an AVX2-only CPU does (its bf16 call then
    raises "could not create a primitive descriptor"): ``--bf16 true`` trains, with one warning
    line and no traceback."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    result = subprocess.run(
        [sys.executable, "-m", "dpgkit", "train", "--bf16", "true", "--steps", "300",
         "--warmup_steps", "100", "--eval_every_steps", "300", "--eval_episodes", "1",
         "--actor_hidden", "32,32", "--critic_hidden", "32,32", "--out", str(tmp_path / "run"),
         "--no-progress"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line.lower()]
    if platform.machine() in ("x86_64", "AMD64"):  # the cap is oneDNN's x86 setting
        assert len(warnings) == 1 and warnings[0].startswith("dpgkit: warning: bf16: this CPU")
