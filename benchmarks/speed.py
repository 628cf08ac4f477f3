"""Speed benchmark: dpgkit against Stable-Baselines3 at identical settings, the update step alone
against this machine's matmul rate, and the replay buffer's memory. One run, one machine.

    bash benchmarks/setup.sh && benchmarks/.venv-bench/bin/python benchmarks/speed.py
    benchmarks/.venv-bench/bin/python benchmarks/speed.py --steps 50 --repeats 1 \\
        --envs Pendulum-v1 --out /tmp/speed.md                             # a quick smoke test

SB3 is not a dependency of dpgkit: ``benchmarks/setup.sh`` installs it, torch and dpgkit into the
benchmark's own venv, ``benchmarks/.venv-bench``. Run it on an otherwise idle machine.

Three sections, each printed as a markdown table and written to ``--out`` (bench/speed.md):

1. **Learning speed**: env steps per second with one update per env step, after warm-up, for
   dpgkit (``Trainer.step()``) and SB3 (``model.learn``) with the same env, network sizes, batch
   size, learning rate, buffer size, warm-up, gamma, tau and Gaussian action noise; for DDPG and
   TD3, each env, each torch thread count. Each measurement builds the learner, runs the
   warm-up plus ``--burn-in`` learning steps untimed, then times exactly ``--steps`` learning
   steps. dpgkit and SB3 alternate (dpgkit, SB3, dpgkit, SB3, ...) ``--repeats`` times so that
   drift on a shared machine hits both; the ratio is the median of the per-pair ratios.
2. **The update alone**: dpgkit DDPG updates per second on HalfCheetah shapes (obs 17, action 6)
   from a filled ReplayBuffer, with and without sampling; the matmul FLOPs of one update counted
   from the layer shapes (:func:`ddpg_update_gemms`); the fp32 rate this machine reaches on
   exactly those matmuls, measured in the same process and thread count; and the fraction of it
   the update reaches.
3. **Replay memory**: measured RSS/tracemalloc growth of a ReplayBuffer holding 1M HalfCheetah
   transitions against the raw bytes of its fields.

Every measurement runs in a fresh subprocess (``speed.py --one SPEC``) so thread settings,
allocator state and warm caches do not leak between them; the child prints one JSON line.
"""

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM = 17, 6
NEVER = 10**12  # eval_every / total_env_steps that no benchmark reaches


# ---------------------------------------------------------------------------------------------
# The header
# ---------------------------------------------------------------------------------------------

def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_commit() -> str:
    """The repo's HEAD commit, marked ``+dirty`` when the work tree differs from it."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "dpgkit"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def header() -> str:
    """Date, machine, and the versions the numbers were measured with."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([
        "# dpgkit speed benchmark",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); load average at start: {load}",
        f"- python {platform.python_version()}, torch {package_version('torch')}, "
        f"stable-baselines3 {package_version('stable-baselines3')}, "
        f"gymnasium {package_version('gymnasium')}, mujoco {package_version('mujoco')}, "
        f"numpy {package_version('numpy')}",
        f"- dpgkit {package_version('dpgkit')} at commit {git_commit()}",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        "",
    ])


# ---------------------------------------------------------------------------------------------
# Running one measurement in a fresh process
# ---------------------------------------------------------------------------------------------

def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``speed.py --one SPEC`` in a fresh interpreter and return the JSON line it prints.

    The thread count is also given to OpenMP/BLAS through the environment, so numpy and torch
    both see it from the start.
    """
    threads = str(spec.get("threads", 1))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "MKL_NUM_THREADS": threads}
    command = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"measurement {spec} failed (exit {done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def child_main(spec: dict[str, Any]) -> None:
    """Entry point of a child: run the measurement ``spec['kind']`` and print its JSON."""
    measure = {"dpgkit": measure_dpgkit_learning, "sb3": measure_sb3_learning,
               "update": measure_update, "memory": measure_replay_memory}[spec["kind"]]
    print(json.dumps(measure(spec)), flush=True)


# ---------------------------------------------------------------------------------------------
# 1. Learning speed: dpgkit Trainer against SB3, at identical settings
# ---------------------------------------------------------------------------------------------

def shared_settings(args: argparse.Namespace, algo: str, env_id: str, threads: int
                    ) -> dict[str, Any]:
    """The settings both implementations get. gamma, tau and TD3's target smoothing and policy
    delay come from dpgkit's preset of the same name (``ddpg``: gamma 0.98; ``td3``: 0.99), so
    the two sides are set from one source."""
    from dpgkit.presets import preset_config

    preset = preset_config(algo)
    settings = dict(
        algo=algo, env_id=env_id, threads=threads, hidden=args.hidden,
        batch_size=args.batch_size, lr=args.lr, buffer_size=args.buffer_size,
        warmup=args.warmup, burn_in=args.burn_in, steps=args.steps, noise=args.noise,
        gamma=preset.gamma, tau=preset.tau,
    )
    if algo == "td3":
        settings |= dict(target_noise=preset.target_noise,
                         target_noise_clip=preset.target_noise_clip,
                         policy_delay=preset.policy_delay)
    return settings


def measure_dpgkit_learning(spec: dict[str, Any]) -> dict[str, Any]:
    """Env steps/s of dpgkit's Trainer: warm-up and burn-in untimed, then ``steps`` timed
    ``Trainer.step()`` calls, each one env step and one update."""
    import torch

    from dpgkit.presets import preset_config
    from dpgkit.train import Trainer

    overrides = dict(
        env_id=spec["env_id"], actor_hidden=tuple(spec["hidden"]),
        critic_hidden=tuple(spec["hidden"]), batch_size=spec["batch_size"],
        actor_lr=spec["lr"], critic_lr=spec["lr"], replay_size=spec["buffer_size"],
        warmup_steps=spec["warmup"], gamma=spec["gamma"], tau=spec["tau"],
        exploration_noise="gaussian", gaussian_sigma=spec["noise"], updates_per_step=1.0,
        eval_every=NEVER, total_env_steps=NEVER, torch_threads=spec["threads"], seed=0,
        bf16=spec.get("bf16", False))
    if spec["algo"] == "td3":
        overrides |= {k: spec[k] for k in ("target_noise", "target_noise_clip", "policy_delay")}
    fields = {f.name for f in dataclasses.fields(preset_config(spec["algo"]))}
    for name in ("checkpoint_every", "checkpoint_every_steps"):  # its name before and after
        if name in fields:
            overrides[name] = 0  # periodic checkpoints off: only "at the end", never
    config = preset_config(spec["algo"], **overrides)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, Path(tmp) / "run")
        for _ in range(spec["warmup"] + spec["burn_in"]):
            trainer.step()
        steps0, updates0 = trainer.env_steps, trainer.agent.updates
        start = time.perf_counter()
        for _ in range(spec["steps"]):
            trainer.step()
        seconds = time.perf_counter() - start
        steps, updates = trainer.env_steps - steps0, trainer.agent.updates - updates0
        trainer.writer.close()
        trainer.envs.close()
        trainer.eval_env.close()
    check_counts("dpgkit", spec, steps, updates)
    return {"steps": steps, "updates": updates, "seconds": seconds,
            "steps_per_s": steps / seconds, "torch_threads": torch.get_num_threads()}


def measure_sb3_learning(spec: dict[str, Any]) -> dict[str, Any]:
    """Env steps/s of SB3's DDPG/TD3 ``learn``, in two calls.

    SB3 counts like dpgkit: each ``collect_rollouts`` (train_freq=1) takes one env step,
    ``num_timesteps += 1``, then trains one gradient step if ``num_timesteps > learning_starts``.
    So ``learn(warmup + burn_in)`` makes exactly ``burn_in`` updates (untimed), and
    ``learn(steps, reset_num_timesteps=False)`` continues without resetting the env and makes
    exactly ``steps`` env steps and ``steps`` updates (timed). Both counts are checked.
    """
    import gymnasium as gym
    import torch
    from stable_baselines3 import DDPG, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    torch.set_num_threads(spec["threads"])
    env = gym.make(spec["env_id"])
    action_dim = env.action_space.shape[0]
    kwargs: dict[str, Any] = dict(
        policy_kwargs=dict(net_arch=list(spec["hidden"])), learning_rate=spec["lr"],
        buffer_size=spec["buffer_size"], learning_starts=spec["warmup"],
        batch_size=spec["batch_size"], tau=spec["tau"], gamma=spec["gamma"], train_freq=1,
        gradient_steps=1, seed=0, device="cpu", verbose=0,
        action_noise=NormalActionNoise(np.zeros(action_dim), spec["noise"] * np.ones(action_dim)))
    if spec["algo"] == "td3":
        kwargs |= dict(policy_delay=spec["policy_delay"],
                       target_policy_noise=spec["target_noise"],
                       target_noise_clip=spec["target_noise_clip"])
    model = (TD3 if spec["algo"] == "td3" else DDPG)("MlpPolicy", env, **kwargs)
    model.learn(spec["warmup"] + spec["burn_in"])
    if model._n_updates != spec["burn_in"]:
        raise RuntimeError(f"SB3 made {model._n_updates} updates in warm-up + burn-in, "
                           f"expected {spec['burn_in']}")
    steps0, updates0 = model.num_timesteps, model._n_updates
    start = time.perf_counter()
    model.learn(spec["steps"], reset_num_timesteps=False)
    seconds = time.perf_counter() - start
    steps, updates = model.num_timesteps - steps0, model._n_updates - updates0
    check_counts("SB3", spec, steps, updates)
    return {"steps": steps, "updates": updates, "seconds": seconds,
            "steps_per_s": steps / seconds, "torch_threads": torch.get_num_threads()}


def check_counts(name: str, spec: dict[str, Any], steps: int, updates: int) -> None:
    """Refuse a measurement whose timed window was not exactly ``steps`` steps and updates."""
    if steps != spec["steps"] or updates != spec["steps"]:
        raise RuntimeError(f"{name} timed {steps} env steps and {updates} updates, expected "
                           f"{spec['steps']} of each")


def learning_section(args: argparse.Namespace) -> str:
    """Section 1: alternate dpgkit and SB3 runs per (env, algo, threads); table the results."""
    bf16_head = " dpgkit `bf16` steps/s (each repeat) | `bf16`/SB3 (median) |" if args.bf16 else ""
    rows = ["| env | algo | threads | gamma | dpgkit steps/s (each repeat) | "
            "SB3 steps/s (each repeat) | dpgkit median | SB3 median | dpgkit/SB3 (median) |"
            + bf16_head, "|---|---|---|---|---|---|---|---|---|" + "---|---|" * args.bf16]
    for env_id in args.envs:
        for algo in args.algos:
            for threads in args.threads:
                settings = shared_settings(args, algo, env_id, threads)
                ours, theirs, low = [], [], []
                runs = [("dpgkit", ours, {}), ("sb3", theirs, {})]
                if args.bf16:
                    runs.append(("dpgkit", low, {"bf16": True}))
                for repeat in range(args.repeats):
                    for kind, results, extra in runs:
                        result = run_child({"kind": kind, **settings, **extra})
                        results.append(result["steps_per_s"])
                        log(f"{env_id} {algo} threads={threads} repeat {repeat + 1} {kind}"
                            f"{' bf16' * bool(extra)}: {result['steps_per_s']:.1f} steps/s "
                            f"(torch threads {result['torch_threads']})")
                ratio = statistics.median(o / t for o, t in zip(ours, theirs, strict=True))
                row = (f"| {env_id} | {algo} | {threads} | {settings['gamma']} | "
                       f"{', '.join(f'{v:.1f}' for v in ours)} | "
                       f"{', '.join(f'{v:.1f}' for v in theirs)} | "
                       f"{statistics.median(ours):.1f} | {statistics.median(theirs):.1f} | "
                       f"{ratio:.2f} |")
                if args.bf16:
                    low_ratio = statistics.median(o / t for o, t in zip(low, theirs, strict=True))
                    row += f" {', '.join(f'{v:.1f}' for v in low)} | {low_ratio:.2f} |"
                rows.append(row)
    from dpgkit.presets import preset_config

    td3 = preset_config("td3")
    hidden = "-".join(map(str, args.hidden))
    intro = (f"## 1. Env steps per second while learning (one update per env step)\n\n"
             f"Both sides: networks {hidden} (actor and critic), batch {args.batch_size}, "
             f"learning rate {args.lr:g} (actor and critic), buffer {args.buffer_size:,}, "
             f"warm-up {args.warmup} uniform-random steps, tau and gamma from dpgkit's preset, "
             f"Gaussian action noise sigma {args.noise} in the [-1, 1] action scale; TD3: target "
             f"noise {td3.target_noise} clipped at {td3.target_noise_clip}, policy delay "
             f"{td3.policy_delay} (dpgkit's td3 preset). Untimed: warm-up + {args.burn_in} "
             f"learning steps; timed: {args.steps} learning steps. Runs alternate dpgkit, SB3 "
             f"({args.repeats} pairs); the ratio is the median of the per-pair ratios."
             + (" With `--bf16`, each pair also runs dpgkit with `bf16=True` (opt-in: the "
                "hidden-to-hidden products in bfloat16; SB3 has no such mode)." if args.bf16
                else "") + "\n\n")
    return intro + "\n".join(rows) + "\n"


# ---------------------------------------------------------------------------------------------
# 2. The update alone: updates/s, FLOPs per update, and this machine's matmul rate
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Gemm:
    """One matrix product (M x K) @ (K x N) of an update, as autograd runs it for a Linear.

    ``kind``: ``fwd`` is x @ W^T (x: B x in, W: out x in); ``dx`` (input gradient) is
    g @ W (g: B x out); ``dw`` (weight gradient) is g^T @ x. Each costs 2 * B * in * out FLOPs.
    """

    what: str
    kind: str
    batch: int
    n_in: int
    n_out: int
    hidden_to_hidden: bool = False  # neither a network's first layer nor its last

    @property
    def flops(self) -> int:
        return 2 * self.batch * self.n_in * self.n_out


def linear_shapes(n_in: int, hidden: tuple[int, ...], n_out: int) -> list[tuple[int, int]]:
    """(in, out) of each Linear of an MLP n_in -> hidden... -> n_out."""
    sizes = (n_in, *hidden, n_out)
    return list(zip(sizes[:-1], sizes[1:], strict=True))


def ddpg_update_gemms(obs_dim: int, action_dim: int, actor_hidden: tuple[int, ...],
                      critic_hidden: tuple[int, ...], batch: int) -> list[Gemm]:
    """Every matrix product of one dpgkit DDPG update (``DDPGAgent.update``), in order.

    Networks: actor obs -> hidden -> action (tanh); critic concat(s, a) -> hidden -> 1 (dpgkit's
    ``critic_action_layer=0``, the one that matches SB3). For a Linear of in x out at batch B a
    forward is one product of 2*B*in*out FLOPs; its backward is a weight gradient (2*B*in*out)
    and, unless nothing upstream needs it, an input gradient (2*B*in*out), so about 2x forward.
    The passes of one update:

    1. target actor forward on s'                       -> a' = mu'(s')      (no grad)
    2. target critic forward on (s', a')                -> y                  (no grad)
    3. critic forward on (s, a)
    4. critic backward of the critic loss: weight gradients of every layer; input gradients of
       every layer but the first (s and a are data, nothing needs their gradient)
    5. actor forward on s                               -> mu(s)
    6. critic forward on (s, mu(s))
    7. critic backward of the actor loss: the critic's parameters are frozen
       (``requires_grad_(False)``), so no weight gradients, but input gradients through every
       layer *including the first*, since the action input mu(s) needs its gradient (autograd
       computes the full (B x out) @ (out x (obs+action)) product and then splits s from a)
    8. actor backward: weight gradients of every layer; input gradients of all but the first

    Assumptions: only matrix products are counted. Bias adds, ReLU/tanh, concat, the losses, the
    TD target, Adam (about 10 elementwise FLOPs per parameter) and the soft target updates are
    elementwise and left out: they cost little arithmetic but many small, memory-bound kernels,
    which is part of what the measured fraction shows.
    """
    actor = linear_shapes(obs_dim, actor_hidden, action_dim)
    critic = linear_shapes(obs_dim + action_dim, critic_hidden, 1)

    def middle(index: int, layers: list[tuple[int, int]]) -> bool:
        return 0 < index < len(layers) - 1

    def forward(what: str, layers: list[tuple[int, int]]) -> list[Gemm]:
        return [Gemm(what, "fwd", batch, i, o, middle(index, layers))
                for index, (i, o) in enumerate(layers)]

    def backward(what: str, layers: list[tuple[int, int]], weights: bool,
                 first_input: bool) -> list[Gemm]:
        gemms = []
        for index, (i, o) in reversed(list(enumerate(layers))):
            if weights:
                gemms.append(Gemm(what, "dw", batch, i, o, middle(index, layers)))
            if index > 0 or first_input:
                gemms.append(Gemm(what, "dx", batch, i, o, middle(index, layers)))
        return gemms

    return [
        *forward("1 target actor fwd (s')", actor),
        *forward("2 target critic fwd (s', a')", critic),
        *forward("3 critic fwd (s, a)", critic),
        *backward("4 critic bwd (critic loss)", critic, weights=True, first_input=False),
        *forward("5 actor fwd (s)", actor),
        *forward("6 critic fwd (s, mu(s))", critic),
        *backward("7 critic bwd to its action input (frozen)", critic, weights=False,
                  first_input=True),
        *backward("8 actor bwd", actor, weights=True, first_input=False),
    ]


def ddpg_update_flops(obs_dim: int, action_dim: int, actor_hidden: tuple[int, ...],
                      critic_hidden: tuple[int, ...], batch: int) -> int:
    """Matmul FLOPs of one dpgkit DDPG update: the sum over :func:`ddpg_update_gemms`
    (see there for the passes and the assumptions)."""
    return sum(g.flops for g in ddpg_update_gemms(obs_dim, action_dim, actor_hidden,
                                                  critic_hidden, batch))


def gemm_operands(gemm: Gemm, dtype: Any = None) -> tuple[Any, Any]:
    """Random operands (fp32 unless ``dtype``) laid out as autograd's Linear uses them for
    ``gemm.kind``."""
    import torch

    x = torch.randn(gemm.batch, gemm.n_in, dtype=dtype)
    w = torch.randn(gemm.n_out, gemm.n_in, dtype=dtype)
    g = torch.randn(gemm.batch, gemm.n_out, dtype=dtype)
    return {"fwd": (x, w.t()), "dx": (g, w), "dw": (g.t(), x)}[gemm.kind]


def best_product_seconds(a: Any, b: Any) -> float:
    """Seconds of the fastest way torch computes a @ b: as it is, or as (b^T @ a^T)^T (the same
    product, with the operands' layouts swapped, which some kernels run much faster), each into
    a preallocated output."""
    import torch

    out = torch.empty(a.shape[0], b.shape[1], dtype=a.dtype)
    out_t = torch.empty(b.shape[1], a.shape[0], dtype=a.dtype)
    return min(seconds_per_call(lambda: torch.mm(a, b, out=out)),
               seconds_per_call(lambda: torch.mm(b.t(), a.t(), out=out_t)))


def seconds_per_call(fn: Callable[[], Any], min_seconds: float = 0.05, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean time of ``fn()``, each round at least ``min_seconds``."""
    for _ in range(3):
        fn()
    calls = 1
    while True:  # find how many calls fill min_seconds
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - start >= min_seconds:
            break
        calls *= 2
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def matmul_mix_rate(gemms: list[Gemm], bf16: bool = False) -> tuple[float, float]:
    """(seconds, GFLOP/s) of running every product of ``gemms`` once with ``torch.mm``.

    Each distinct (kind, B, in, out) is timed alone (into a preallocated output, in whichever of
    its two layouts torch runs faster: :func:`best_product_seconds`) and weighted by how often the
    update performs it, so the rate is the machine's best fp32 matmul rate for this update's exact
    mix of shapes, in the current thread count. With ``bf16``, the hidden-to-hidden products are
    timed in bfloat16, as dpgkit's ``bf16`` mode runs them.
    """
    import torch

    counts: dict[tuple[str, int, int, int, bool], int] = {}
    for g in gemms:
        key = (g.kind, g.batch, g.n_in, g.n_out, bf16 and g.hidden_to_hidden)
        counts[key] = counts.get(key, 0) + 1
    seconds = 0.0
    for (kind, batch, n_in, n_out, low), count in counts.items():
        operands = gemm_operands(Gemm("", kind, batch, n_in, n_out),
                                 torch.bfloat16 if low else torch.float32)
        seconds += count * best_product_seconds(*operands)
    return seconds, sum(g.flops for g in gemms) / seconds / 1e9


def square_matmul_rate(n: int = 1024) -> float:
    """GFLOP/s of one large (n x n) @ (n x n) fp32 product: the machine's rate when shapes are
    no obstacle, for reference."""
    import torch

    a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    return 2 * n**3 / seconds_per_call(lambda: torch.mm(a, b, out=out)) / 1e9


def random_transitions(n: int, obs_dim: int, action_dim: int, seed: int = 0,
                       episode_length: int = 1000) -> tuple[np.ndarray, ...]:
    """n transitions (obs, action, reward, next_obs, terminated, truncated) for ``add``: random
    observations strung into episodes of ``episode_length`` steps (each s' is the next s),
    every one truncated at its end, as HalfCheetah's are."""
    rng = np.random.default_rng(seed)
    episodes = -(-n // episode_length)
    walk = rng.standard_normal((episodes, episode_length + 1, obs_dim), dtype=np.float32)
    obs = walk[:, :-1].reshape(-1, obs_dim)[:n]
    next_obs = walk[:, 1:].reshape(-1, obs_dim)[:n]
    truncated = (np.arange(n) % episode_length) == episode_length - 1
    return (obs, rng.uniform(-1, 1, (n, action_dim)).astype(np.float32),
            rng.standard_normal(n, dtype=np.float32), next_obs, np.zeros(n, dtype=bool),
            truncated)


def fill(replay: Any, chunk: tuple[np.ndarray, ...]) -> Any:
    """Add ``capacity`` transitions to ``replay`` through ``add``, ``chunk`` again and again (the
    same chunk each time, so filling allocates nothing but ``add``'s own temporaries). Each
    episode end costs a row, so the buffer then holds a little less than ``capacity``."""
    added = 0
    while added < replay.capacity:
        n = min(len(chunk[2]), replay.capacity - added)
        for i in range(n):  # one env: its transitions are added one at a time, as in training
            replay.add(*(field[i] for field in chunk))
        added += n
    return replay


def measure_update(spec: dict[str, Any]) -> dict[str, Any]:
    """Updates/s of dpgkit's DDPG update at HalfCheetah shapes, with and without sampling, the
    time of sampling alone, and the matmul rate of the update's products, in one process.

    With and without sampling are timed in interleaved rounds (median taken) so drift hits both.
    """
    import torch

    from dpgkit.agent import DDPGAgent
    from dpgkit.presets import preset_config
    from dpgkit.replay import ReplayBuffer

    torch.set_num_threads(spec["threads"])
    obs_dim, action_dim, batch = HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM, spec["batch_size"]
    hidden = tuple(spec["hidden"])
    config = preset_config("ddpg", actor_hidden=hidden, critic_hidden=hidden, batch_size=batch,
                           replay_size=spec["buffer_size"], torch_threads=spec["threads"],
                           fast_update=spec["path"] != "reference", bf16=spec["path"] == "bf16")
    torch.set_flush_denormal(config.flush_denormal)  # as the Trainer does
    agent = DDPGAgent(obs_dim, action_dim, config)
    replay = fill(ReplayBuffer(spec["buffer_size"], obs_dim, action_dim),
                  random_transitions(100_000, obs_dim, action_dim))
    rng = np.random.default_rng(1)
    fixed = replay.sample(batch, rng)

    def timed(fn: Callable[[], Any], n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n

    # the same update code on networks 8-8 and batch 8: its matrix products are next to nothing,
    # so its time is the part of an update that does not grow with the networks (Python, torch's
    # per-operation dispatch, launching each kernel)
    tiny_config = dataclasses.replace(config, actor_hidden=(8, 8), critic_hidden=(8, 8),
                                      batch_size=8)
    tiny_agent = DDPGAgent(obs_dim, action_dim, tiny_config)
    tiny_batch = replay.sample(8, rng)

    n = spec["updates"]
    timed(lambda: agent.update(replay.sample(batch, rng)), 50)  # warm up
    timed(lambda: tiny_agent.update(tiny_batch), 50)
    with_sampling, without_sampling, sampling, tiny = [], [], [], []
    for _ in range(3):
        with_sampling.append(timed(lambda: agent.update(replay.sample(batch, rng)), n))
        without_sampling.append(timed(lambda: agent.update(fixed), n))
        sampling.append(timed(lambda: replay.sample(batch, rng), n))
        tiny.append(timed(lambda: tiny_agent.update(tiny_batch), n))
    gemms = ddpg_update_gemms(obs_dim, action_dim, hidden, hidden, batch)
    mix_seconds, mix_gflops = matmul_mix_rate(gemms, bf16=spec["path"] == "bf16")
    return {"update_s_with_sampling": statistics.median(with_sampling),
            "update_s_without_sampling": statistics.median(without_sampling),
            "sample_s": statistics.median(sampling), "tiny_update_s": statistics.median(tiny),
            "flops": sum(g.flops for g in gemms),
            "gemm_mix_s": mix_seconds, "gemm_mix_gflops": mix_gflops,
            "square_gflops": square_matmul_rate(), "torch_threads": torch.get_num_threads()}


def gemm_table(gemms: list[Gemm]) -> str:
    """The products of one update, one row per pass, with their FLOPs."""
    rows = ["| pass | products (kind: B x in -> out) | MFLOP |", "|---|---|---|"]
    for what in dict.fromkeys(g.what for g in gemms):
        mine = [g for g in gemms if g.what == what]
        shapes = ", ".join(f"{g.kind}: {g.batch}x{g.n_in}->{g.n_out}" for g in mine)
        rows.append(f"| {what} | {shapes} | {sum(g.flops for g in mine) / 1e6:.2f} |")
    rows.append(f"| **total** | {len(gemms)} products | "
                f"**{sum(g.flops for g in gemms) / 1e6:.2f}** |")
    return "\n".join(rows) + "\n"


def update_section(args: argparse.Namespace) -> str:
    """Section 2: one fresh process per thread count; table updates/s against the matmul rate."""
    rows = ["| threads | path | updates/s with sampling | updates/s without sampling | sample "
            "alone (us) | MFLOP/update | update GFLOP/s (no sampling) | matmul rate at the "
            "update's shapes (GFLOP/s) | fraction of it reached | 1024^3 matmul (GFLOP/s) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    split = ["| threads | path | update (us) | its products alone (us) | fixed: the same update "
             "at 8-8 / batch 8 (us) | the rest (us) | fraction reached | fraction were the fixed "
             "part zero |", "|---|---|---|---|---|---|---|---|"]
    names = {"fast": "fast (default)", "bf16": "fast, `bf16` (opt-in)",
             "reference": "reference (autograd)"}
    for threads in args.threads:
        for kind in ("fast", "bf16", "reference"):
            r = run_child({"kind": "update", "threads": threads, "hidden": args.hidden,
                           "batch_size": args.batch_size, "buffer_size": args.buffer_size,
                           "updates": args.updates, "path": kind})
            achieved = r["flops"] / r["update_s_without_sampling"] / 1e9
            path = names[kind]
            rows.append(
                f"| {threads} ({r['torch_threads']}) | {path} | "
                f"{1 / r['update_s_with_sampling']:.1f} | "
                f"{1 / r['update_s_without_sampling']:.1f} | {r['sample_s'] * 1e6:.0f} | "
                f"{r['flops'] / 1e6:.1f} | {achieved:.1f} | {r['gemm_mix_gflops']:.1f} | "
                f"{achieved / r['gemm_mix_gflops']:.0%} | {r['square_gflops']:.1f} |")
            update_us, products_us, fixed_us = (1e6 * r[k] for k in (
                "update_s_without_sampling", "gemm_mix_s", "tiny_update_s"))
            split.append(
                f"| {threads} | {path} | {update_us:.0f} | {products_us:.0f} | {fixed_us:.0f} | "
                f"{update_us - products_us - fixed_us:.0f} | {products_us / update_us:.0%} | "
                f"{products_us / (update_us - fixed_us):.0%} |")
            log(f"update threads={threads} {path}: {1 / r['update_s_without_sampling']:.1f} "
                f"updates/s, {achieved:.1f} of {r['gemm_mix_gflops']:.1f} GFLOP/s")
    hidden = tuple(args.hidden)
    gemms = ddpg_update_gemms(HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM, hidden, hidden,
                              args.batch_size)
    intro = (f"## 2. The DDPG update alone (no env)\n\n"
             f"dpgkit `DDPGAgent.update` on its fast path (dpgkit/fastpath.py, the default), on "
             f"the fast path with `bf16=True` (the hidden-to-hidden products in bfloat16) and on "
             f"its autograd reference path (`fast_update=False`), networks "
             f"{'-'.join(map(str, hidden))}, batch "
             f"{args.batch_size}, HalfCheetah shapes (obs {HALFCHEETAH_OBS_DIM}, action "
             f"{HALFCHEETAH_ACTION_DIM}), from a ReplayBuffer filled with {args.buffer_size:,} "
             f"transitions; {args.updates} updates per timing round, median of 3 interleaved "
             f"rounds. 'without sampling' reuses one preallocated batch. The matmul rate times "
             f"`torch.mm` on each product below (same shapes, the faster of its two layouts, same "
             f"thread count, same process; for `bf16` the hidden-to-hidden products in bfloat16) "
             f"weighted by how often the update performs it; the fraction is the update's "
             f"matmul FLOPs per second over that rate (1.0 = the update is nothing but its "
             f"matmuls). threads: asked (torch reported).\n\n")
    where = ("\n\nWhere one update's time goes (without sampling). 'its products alone': the "
             "products below timed alone, as the matmul rate above times them. 'fixed': the same "
             "update on networks 8-8 with batch 8, whose products are next to nothing, so its "
             "time is what an update costs whatever the network size (Python, torch's "
             "per-operation dispatch, kernel launches). 'the rest': the elementwise work that "
             "grows with the networks (bias, ReLU and its mask, Adam, the soft update) and "
             "the products running slower inside the update than alone (their operands no "
             "longer all in cache). The last column is the fraction the update would reach "
             "if the fixed part cost nothing.\n\n")
    return (intro + "\n".join(rows) + where + "\n".join(split)
            + "\n\nMatrix products of one update (see "
            "`ddpg_update_gemms` in benchmarks/speed.py for what is and is not counted):\n\n"
            + gemm_table(gemms))


# ---------------------------------------------------------------------------------------------
# 3. Replay memory
# ---------------------------------------------------------------------------------------------

def rss_bytes() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process, from /proc/self/status."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":")
            fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def measure_replay_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """RSS and tracemalloc growth of a dpgkit ReplayBuffer: right after construction (numpy's
    zeros are lazily mapped, so little is resident) and after filling every slot through ``add``.
    """
    from dpgkit.replay import FIELDS as REPLAY_FIELDS
    from dpgkit.replay import ReplayBuffer

    capacity, obs_dim, action_dim = spec["capacity"], spec["obs_dim"], spec["action_dim"]
    chunk = random_transitions(10_000, obs_dim, action_dim)  # made before any baseline
    tracemalloc.start()
    rss0, _ = rss_bytes()
    replay = ReplayBuffer(capacity, obs_dim, action_dim)
    rss_allocated, _ = rss_bytes()
    traced_allocated, _ = tracemalloc.get_traced_memory()
    del replay
    tracemalloc.reset_peak()
    rss_before_fill, _ = rss_bytes()
    replay = fill(ReplayBuffer(capacity, obs_dim, action_dim), chunk)
    rss_filled, rss_peak = rss_bytes()
    traced_filled, traced_peak = tracemalloc.get_traced_memory()
    fields = {name: (list(a.shape), str(a.dtype), int(a.nbytes))
              for name, a in ((name, getattr(replay, name)) for name in REPLAY_FIELDS)}
    fields["transitions held"] = ([len(replay)], "", 0)
    return {"fields": fields, "rss_allocated": rss_allocated - rss0,
            "rss_filled": rss_filled - rss_before_fill, "rss_peak": rss_peak - rss_before_fill,
            "traced_allocated": traced_allocated, "traced_filled": traced_filled,
            "traced_peak": traced_peak}


def memory_section(args: argparse.Namespace) -> str:
    """Section 3: measured memory of a full 1M-transition buffer against its fields' bytes."""
    r = run_child({"kind": "memory", "capacity": args.buffer_size,
                   "obs_dim": HALFCHEETAH_OBS_DIM, "action_dim": HALFCHEETAH_ACTION_DIM})
    fields = r["fields"]
    held = fields.pop("transitions held")[0][0]
    as_stored = sum(nbytes for _, _, nbytes in fields.values())
    # the raw bytes of N transitions, each field once: s, a, r as float32, the two flags as bytes
    raw = args.buffer_size * (4 * HALFCHEETAH_OBS_DIM + 4 * HALFCHEETAH_ACTION_DIM + 4 + 1 + 1)
    mb = lambda b: f"{b / 1e6:.1f}"  # noqa: E731
    rows = ["| what | shape | dtype | MB | / raw |", "|---|---|---|---|---|"]
    rows += [f"| field `{name}` | {tuple(shape)} | {dtype} | {mb(nbytes)} | |"
             for name, (shape, dtype, nbytes) in fields.items()]
    rows += [
        f"| raw: {args.buffer_size:,} x (s, a, r as float32, terminated, truncated as bytes) | | "
        f"| {mb(raw)} | 1.000 |",
        f"| **the buffer's arrays** | | | **{mb(as_stored)}** | **{as_stored / raw:.3f}** |",
        f"| measured: RSS / tracemalloc growth right after construction (lazy zeros) | | | "
        f"{mb(r['rss_allocated'])} / {mb(r['traced_allocated'])} | |",
        f"| measured: RSS growth after adding {args.buffer_size:,} transitions | | | "
        f"{mb(r['rss_filled'])} | {r['rss_filled'] / raw:.3f} |",
        f"| measured: peak RSS growth while filling (VmHWM) | | | {mb(r['rss_peak'])} | "
        f"{r['rss_peak'] / raw:.3f} |",
        f"| measured: tracemalloc after filling / peak while filling | | | "
        f"{mb(r['traced_filled'])} / {mb(r['traced_peak'])} | |",
        f"| transitions held after the fill (one row per episode end) | {held:,} | | | |",
    ]
    intro = (f"## 3. Replay buffer memory, {args.buffer_size:,} HalfCheetah transitions\n\n"
             f"dpgkit `ReplayBuffer({args.buffer_size}, {HALFCHEETAH_OBS_DIM}, "
             f"{HALFCHEETAH_ACTION_DIM})`, filled through `add`, one transition at a time, from "
             f"10,000 random transitions strung into 1,000-step episodes and added again and "
             f"again (made before the baseline; `add`'s own temporaries count in the peaks), in "
             f"a fresh process. Each observation is stored once. "
             f"MB = 10^6 bytes.\n\n")
    return intro + "\n".join(rows) + "\n"


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"[speed] {message}", file=sys.stderr, flush=True)


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def str_list(text: str) -> list[str]:
    return [x for x in text.split(",") if x]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", type=str_list, default=["learn", "update", "memory"],
                        help="which sections to run: learn,update,memory")
    parser.add_argument("--envs", type=str_list, default=["Pendulum-v1", "HalfCheetah-v5"])
    parser.add_argument("--algos", type=str_list, default=["ddpg", "td3"])
    parser.add_argument("--threads", type=int_list, default=[1, 2], help="torch thread counts")
    parser.add_argument("--hidden", type=int_list, default=[256, 256],
                        help="hidden layer sizes of actor and critic")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3, help="actor and critic learning rate")
    parser.add_argument("--buffer-size", type=int, default=1_000_000)
    parser.add_argument("--noise", type=float, default=0.1, help="Gaussian action noise std")
    parser.add_argument("--warmup", type=int, default=1000, help="uniform-random steps, untimed")
    parser.add_argument("--burn-in", type=int, default=200,
                        help="learning steps after warm-up, untimed")
    parser.add_argument("--steps", type=int, default=2000, help="timed learning steps")
    parser.add_argument("--repeats", type=int, default=2, help="dpgkit/SB3 pairs per setting")
    parser.add_argument("--bf16", action="store_true",
                        help="also time dpgkit with bf16=True in the learning section")
    parser.add_argument("--updates", type=int, default=500,
                        help="updates per timing round of section 2")
    parser.add_argument("--out", type=Path, default=Path("bench/speed.md"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one measurement
    args = parser.parse_args(argv)
    unknown = set(args.sections) - {"learn", "update", "memory"}
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}: use learn,update,memory")
    if (not args.one and "learn" in args.sections
            and package_version("stable-baselines3") == "not installed"):
        parser.error("stable-baselines3 is not installed in this Python: run "
                     "`bash benchmarks/setup.sh` and use benchmarks/.venv-bench/bin/python")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        child_main(json.loads(args.one))
        return
    started = time.perf_counter()
    parts = [header()]
    sections = {"learn": learning_section, "update": update_section, "memory": memory_section}
    for name in args.sections:
        log(f"section {name} ...")
        parts.append(sections[name](args))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    parts.append(f"Total benchmark time {time.perf_counter() - started:.0f} s; "
                 f"load average at end: {load}.\n")
    text = "\n".join(parts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
