"""Actor saturation: how far the actor's pre-tanh output u (mu(s) = tanh(u)) moves in a run's
first updates, for a run with updates during the warm-up and one without.

    python benchmarks/actor_saturation.py --preset td3 --env InvertedDoublePendulum-v5 --seed 0

Where |u| grows large for every state, tanh'(u) = 1 - tanh(u)^2 (about 4e-6 at |u| = 7, 1e-8
at 9.5) multiplies the policy gradient away: the actor acts at the action bound in every state
and may never come back, however the critic changes (the same evaluation return at every
evaluation). This prints u over the start states of ``--states`` resets (the mean, min and max)
every ``--every`` env steps, for ``--update_during_warmup`` true and false, side by side; the
runs are otherwise the preset's. docs/results.md quotes it for InvertedDoublePendulum's seed 0.
Each run writes a run directory under ``--out`` (a temporary folder by default).
"""

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import dpgkit


def pre_tanh(agent: object, obs: np.ndarray) -> np.ndarray:
    """u(s) of the agent's actor for each row of ``obs``, (N, action_dim): the input of its last
    tanh, after the agent's observation normalisation (if any)."""
    actor: nn.Module = agent.actor  # type: ignore[attr-defined]
    last = [m for m in actor.modules() if isinstance(m, nn.Tanh)][-1]
    seen: list[torch.Tensor] = []
    handle = last.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    try:
        with torch.no_grad():
            actor(agent.obs_norm(torch.as_tensor(obs)))  # type: ignore[attr-defined]
    finally:
        handle.remove()
    return seen[0].numpy()


def trace(preset: str, env_id: str, seed: int, steps: int, every: int, states: int,
          run_dir: Path, **settings: object) -> list[tuple[int, int, float, float, float]]:
    """(env steps, updates, mean u, min u, max u) every ``every`` env steps of a run of
    ``preset`` on ``env_id`` with ``settings``, u over the start states of resets 0..states-1."""
    env = gym.make(env_id)
    obs = np.array([env.reset(seed=k)[0] for k in range(states)], np.float32)
    env.close()
    model = dpgkit.DDPG(env_id, preset=preset, run_dir=run_dir, seed=seed,
                        eval_every_steps=10 * steps, **settings)
    rows = []
    while model.trainer is None or model.trainer.env_steps < steps:
        model.learn(additional_steps=every)
        u = pre_tanh(model.trainer.agent, obs)
        rows.append((model.trainer.env_steps, model.trainer.agent.updates, float(u.mean()),
                     float(u.min()), float(u.max())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="td3")
    parser.add_argument("--env", default="InvertedDoublePendulum-v5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--states", type=int, default=50)
    parser.add_argument("--warmup_steps", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="actor-saturation-"))
    columns = {}
    for during in (True, False):
        columns[during] = trace(args.preset, args.env, args.seed, args.steps, args.every,
                                args.states, out / f"update_during_warmup-{during}",
                                warmup_steps=args.warmup_steps, update_during_warmup=during)
    print(f"{args.preset} on {args.env}, seed {args.seed}: the actor's pre-tanh output u over "
          f"{args.states} start states (mean [min, max]), warm-up {args.warmup_steps} steps")
    print(f"{'env steps':>9} | {'updates during warm-up':>32} | {'no updates during warm-up':>32}")
    for (steps, n1, mean1, lo1, hi1), (_, n2, mean2, lo2, hi2) in zip(columns[True],
                                                                      columns[False], strict=True):
        print(f"{steps:9d} | {n1:6d} upd  u {mean1:6.2f} [{lo1:6.2f}, {hi1:6.2f}] | "
              f"{n2:6d} upd  u {mean2:6.2f} [{lo2:6.2f}, {hi2:6.2f}]")


if __name__ == "__main__":
    main()
