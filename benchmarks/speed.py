"""Speed benchmark: dpgkit against Stable-Baselines3 at identical settings, the update step alone
against this machine's matmul rate, and the replay buffer's memory. One run, one machine.

    bash benchmarks/setup.sh && benchmarks/.venv-bench/bin/python benchmarks/speed.py
    benchmarks/.venv-bench/bin/python benchmarks/speed.py --steps 50 --repeats 1 \\
        --envs Pendulum-v1 --out /tmp/speed.md                             # a quick smoke test

SB3 is not a dependency of dpgkit: ``benchmarks/setup.sh`` installs it, torch and dpgkit into the
benchmark's own venv, ``benchmarks/.venv-bench``. Run it on an otherwise idle machine: each timed
run records the share of its cores it had (CPU seconds over wall seconds over threads) and the
1-minute load average at its start and end, and the tables mark a time or ratio made with a run
that had less than ``CLEAN_CPU_SHARE`` of its cores as shared instead of clean.

Three sections, each printed as a markdown table. ``--out`` (bench/speed.md) is rewritten after
every section with the header and the sections finished so far, so a benchmark stopped midway
keeps what it measured. The bf16 variants are timed only where oneDNN multiplies bfloat16
natively (:func:`dpgkit.torchops.native_bf16`); elsewhere the table says they were skipped and
why. A measurement that fails is a row that says so, with its error's last line, and the others
still run.

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
3. **Replay memory**: measured RSS growth of a ReplayBuffer holding 1M HalfCheetah transitions
   against the raw bytes of its fields, and tracemalloc of what ``add`` allocates besides them.

Every measurement runs in a fresh subprocess (``speed.py --one SPEC``) so thread settings,
allocator state and warm caches do not leak between them; the child prints one JSON line.
"""

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM = 17, 6
NEVER = 10**12  # eval_every / total_env_steps that no benchmark reaches
# A timed run whose process had less than this share of the cores it ran with (CPU seconds of
# all its threads over wall seconds over its thread count; 1.0: they were its own) shared them
# with other work, so a time or ratio made with it is marked "shared" instead of clean. 0.9
# leaves room for the short serial stretches of a multi-thread run in which a thread waits
# without spinning (torch's OpenMP threads spin between close parallel regions: busy).
CLEAN_CPU_SHARE = 0.9
# transitions of the buffer whose fill section 3 traces: two episode ends, so its ring wraps
TRACED_CAPACITY = 2_000
CPU_NOTE = (f"cpu share: the timed part's CPU seconds (all the process's threads) over its wall "
            f"seconds over its threads (1.0: it had its cores to itself); a ratio made with a "
            f"run under {CLEAN_CPU_SHARE} is marked 'shared: cpu' with the lowest share, not "
            f"clean. 1-min load: the load average at the run's start and end.")
BF16_SKIPPED = ("`bf16` skipped: no native bfloat16: needs AVX-512 BF16 or AMX; dpgkit's bf16 "
                "runs here through a slower path")


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
    """Run ``speed.py --one SPEC`` in a fresh interpreter and return the JSON line it prints, or,
    where the child fails, ``{"failed": the last line of its error}`` (its stderr is logged).

    The thread count is also given to OpenMP/BLAS through the environment, so numpy and torch
    both see it from the start.
    """
    threads = str(spec.get("threads", 1))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "MKL_NUM_THREADS": threads}
    command = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    log(f"measurement {spec} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    errors = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return {"failed": errors[-1] if errors else f"exit {done.returncode} without a result"}


@contextlib.contextmanager
def stopwatch(threads: int) -> Iterator[dict[str, float]]:
    """Time the block: the dict it yields gets, at the block's end, ``seconds`` (wall),
    ``cpu_share`` (this process's CPU seconds over wall seconds over ``threads``: 1.0 = it had
    its cores to itself) and the 1-minute load average at the start and end, ``load_start`` and
    ``load_end``."""
    record = {"load_start": os.getloadavg()[0]}
    cpu, wall = time.process_time(), time.perf_counter()
    yield record
    seconds = time.perf_counter() - wall
    record.update(seconds=seconds, cpu_share=(time.process_time() - cpu) / seconds / threads,
                  load_end=os.getloadavg()[0])


def shared_mark(records: list[dict[str, Any]]) -> str:
    """' (shared: cpu 0.62)' (the lowest share) where a run of ``records`` had less than
    ``CLEAN_CPU_SHARE`` of its cores, else ''."""
    low = min(r["cpu_share"] for r in records)
    return f" (shared: cpu {low:.2f})" if low < CLEAN_CPU_SHARE else ""


def load_cell(record: dict[str, Any]) -> str:
    """A run's 1-minute load average at its start and end, 'start→end'."""
    return f"{record['load_start']:.2f}→{record['load_end']:.2f}"


def failed_cell(record: dict[str, Any]) -> str:
    """'failed: ERROR' for a failed measurement, fit for a table cell."""
    return f"failed: {record['failed'][:200]}".replace("|", "\\|")


def failed_row(cells: list[str], record: dict[str, Any], columns: int) -> str:
    """A table row of ``columns`` for a failed measurement: ``cells``, its error, blanks."""
    cells = [*cells, failed_cell(record)]
    return "| " + " | ".join(cells + [""] * (columns - len(cells))) + " |"


def bf16_skip_reason() -> str:
    """Why the bf16 variants are not timed here, or '' where they are: they need oneDNN's native
    bfloat16 kernels (:func:`dpgkit.torchops.native_bf16`)."""
    from dpgkit.torchops import native_bf16

    return "" if native_bf16() else BF16_SKIPPED


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
        with stopwatch(spec["threads"]) as clock:
            for _ in range(spec["steps"]):
                trainer.step()
        steps, updates = trainer.env_steps - steps0, trainer.agent.updates - updates0
        trainer.writer.close()
        trainer.envs.close()
        trainer.eval_env.close()
    check_counts("dpgkit", spec, steps, updates)
    return {"steps": steps, "updates": updates, "steps_per_s": steps / clock["seconds"],
            "torch_threads": torch.get_num_threads(), **clock}


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
    with stopwatch(spec["threads"]) as clock:
        model.learn(spec["steps"], reset_num_timesteps=False)
    steps, updates = model.num_timesteps - steps0, model._n_updates - updates0
    check_counts("SB3", spec, steps, updates)
    return {"steps": steps, "updates": updates, "steps_per_s": steps / clock["seconds"],
            "torch_threads": torch.get_num_threads(), **clock}


def check_counts(name: str, spec: dict[str, Any], steps: int, updates: int) -> None:
    """Refuse a measurement whose timed window was not exactly ``steps`` steps and updates."""
    if steps != spec["steps"] or updates != spec["steps"]:
        raise RuntimeError(f"{name} timed {steps} env steps and {updates} updates, expected "
                           f"{spec['steps']} of each")


LEARNING_RUNS = {"dpgkit": {"kind": "dpgkit"}, "SB3": {"kind": "sb3"},
                 "bf16": {"kind": "dpgkit", "bf16": True}}  # name -> what its spec adds


def learning_runs(settings: dict[str, Any], names: list[str], repeats: int
                  ) -> dict[str, list[dict[str, Any]]]:
    """The records of ``repeats`` rounds of the runs ``names`` (keys of ``LEARNING_RUNS``) in
    turn, so that drift on a shared machine hits each; a run that fails is not run again."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name, records in runs.items():
            if records and "failed" in records[-1]:
                continue
            record = run_child({**settings, **LEARNING_RUNS[name]})
            records.append(record)
            outcome = failed_cell(record) if "failed" in record else (
                f"{record['steps_per_s']:.1f} steps/s (torch threads {record['torch_threads']}, "
                f"cpu {record['cpu_share']:.2f}, load {load_cell(record)})")
            log(f"{settings['env_id']} {settings['algo']} threads={settings['threads']} repeat "
                f"{repeat + 1} {name}: {outcome}")
    return runs


def rates_cell(records: list[dict[str, Any]]) -> str:
    """Steps/s of each run, or how it failed."""
    return ", ".join(failed_cell(r) if "failed" in r else f"{r['steps_per_s']:.1f}"
                     for r in records)


def median_cell(records: list[dict[str, Any]]) -> str:
    """Median steps/s of the runs; '-' where one failed."""
    if any("failed" in r for r in records):
        return "-"
    return f"{statistics.median(r['steps_per_s'] for r in records):.1f}"


def ratio_cell(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> str:
    """Median of the per-pair steps/s ratios, marked where a run of the pairs shared its cores;
    '-' where one failed."""
    if any("failed" in r for r in ours + theirs):
        return "-"
    ratio = statistics.median(o["steps_per_s"] / t["steps_per_s"]
                              for o, t in zip(ours, theirs, strict=True))
    return f"{ratio:.2f}{shared_mark(ours + theirs)}"


def rounds_cell(runs: dict[str, list[dict[str, Any]]], cell: Callable[[dict[str, Any]], str]
                ) -> str:
    """``cell`` of each run: a round's runs joined by '/', the rounds by ', ' ('-': failed or not
    run)."""
    rounds = itertools.zip_longest(*runs.values())
    return ", ".join("/".join("-" if r is None or "failed" in r else cell(r) for r in one)
                     for one in rounds)


def learning_row(settings: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> str:
    """One row of section 1's table: a setting's runs, their medians, ratios, CPU shares and
    loads."""
    ours, theirs = runs["dpgkit"], runs["SB3"]
    cells = [settings["env_id"], settings["algo"], settings["threads"], settings["gamma"],
             rates_cell(ours), rates_cell(theirs), median_cell(ours), median_cell(theirs),
             ratio_cell(ours, theirs)]
    if "bf16" in runs:
        cells += [rates_cell(runs["bf16"]), ratio_cell(runs["bf16"], theirs)]
    cells += [rounds_cell(runs, lambda r: f"{r['cpu_share']:.2f}"), rounds_cell(runs, load_cell)]
    return "| " + " | ".join(map(str, cells)) + " |"


def learning_section(args: argparse.Namespace) -> str:
    """Section 1: alternate dpgkit and SB3 runs per (env, algo, threads); table the results."""
    skipped = bf16_skip_reason() if args.bf16 else ""
    names = ["dpgkit", "SB3"] + ["bf16"] * (args.bf16 and not skipped)
    bf16_head = " dpgkit `bf16` steps/s (each repeat) | `bf16`/SB3 (median) |" * ("bf16" in names)
    runs_head = "/".join(names)
    head = ("| env | algo | threads | gamma | dpgkit steps/s (each repeat) | SB3 steps/s (each "
            "repeat) | dpgkit median | SB3 median | dpgkit/SB3 (median) |" + bf16_head
            + f" cpu share, {runs_head} (each repeat) | 1-min load at start→end, {runs_head} "
            "(each repeat) |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for env_id in args.envs:
        for algo in args.algos:
            for threads in args.threads:
                settings = shared_settings(args, algo, env_id, threads)
                rows.append(learning_row(settings, learning_runs(settings, names, args.repeats)))
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
                else "") + " " + CPU_NOTE + "\n\n")
    return intro + "\n".join(rows) + "\n" + (f"\n{skipped}.\n" if skipped else "")


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
        for transition in zip(*(field[:n] for field in chunk), strict=True):
            replay.add(*transition)  # one env: one transition at a time, as in training
        added += n
    return replay


def measure_update(spec: dict[str, Any]) -> dict[str, Any]:
    """Updates/s of dpgkit's DDPG update at HalfCheetah shapes, with and without sampling, the
    time of sampling alone, and the matmul rate of the update's products, in one process.

    With and without sampling are timed in interleaved rounds (median taken) so drift hits both.
    The process's share of its cores and the load (:func:`stopwatch`) cover all the timing.
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
    gemms = ddpg_update_gemms(obs_dim, action_dim, hidden, hidden, batch)
    with stopwatch(spec["threads"]) as clock:
        timed(lambda: agent.update(replay.sample(batch, rng)), 50)  # warm up
        timed(lambda: tiny_agent.update(tiny_batch), 50)
        with_sampling, without_sampling, sampling, tiny = [], [], [], []
        for _ in range(3):
            with_sampling.append(timed(lambda: agent.update(replay.sample(batch, rng)), n))
            without_sampling.append(timed(lambda: agent.update(fixed), n))
            sampling.append(timed(lambda: replay.sample(batch, rng), n))
            tiny.append(timed(lambda: tiny_agent.update(tiny_batch), n))
        mix_seconds, mix_gflops = matmul_mix_rate(gemms, bf16=spec["path"] == "bf16")
        square_gflops = square_matmul_rate()
    return {"update_s_with_sampling": statistics.median(with_sampling),
            "update_s_without_sampling": statistics.median(without_sampling),
            "sample_s": statistics.median(sampling), "tiny_update_s": statistics.median(tiny),
            "flops": sum(g.flops for g in gemms),
            "gemm_mix_s": mix_seconds, "gemm_mix_gflops": mix_gflops,
            "square_gflops": square_gflops, "torch_threads": torch.get_num_threads(), **clock}


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


UPDATE_PATHS = {"fast": "fast (default)", "bf16": "fast, `bf16` (opt-in)",
                "reference": "reference (autograd)"}  # spec["path"] -> its name in the tables
UPDATE_HEAD = ("| threads | path | updates/s with sampling | updates/s without sampling | sample "
               "alone (us) | MFLOP/update | update GFLOP/s (no sampling) | matmul rate at the "
               "update's shapes (GFLOP/s) | fraction of it reached | 1024^3 matmul (GFLOP/s) | "
               "cpu share | 1-min load at start→end |")
SPLIT_HEAD = ("| threads | path | update (us) | its products alone (us) | fixed: the same update "
              "at 8-8 / batch 8 (us) | the rest (us) | fraction reached | fraction were the "
              "fixed part zero |")


def update_rows(threads: int, path: str, r: dict[str, Any]) -> tuple[str, str]:
    """The rows of one update measurement in section 2's two tables; its fractions (ratios of
    times taken in one process) are marked where that process shared its cores."""
    if "failed" in r:
        return (failed_row([f"{threads}", path], r, UPDATE_HEAD.count("|") - 1),
                failed_row([f"{threads}", path], r, SPLIT_HEAD.count("|") - 1))
    achieved = r["flops"] / r["update_s_without_sampling"] / 1e9
    mark = shared_mark([r])
    row = (f"| {threads} ({r['torch_threads']}) | {path} | {1 / r['update_s_with_sampling']:.1f} "
           f"| {1 / r['update_s_without_sampling']:.1f} | {r['sample_s'] * 1e6:.0f} | "
           f"{r['flops'] / 1e6:.1f} | {achieved:.1f} | {r['gemm_mix_gflops']:.1f} | "
           f"{achieved / r['gemm_mix_gflops']:.0%}{mark} | {r['square_gflops']:.1f} | "
           f"{r['cpu_share']:.2f} | {load_cell(r)} |")
    update_us, products_us, fixed_us = (1e6 * r[k] for k in (
        "update_s_without_sampling", "gemm_mix_s", "tiny_update_s"))
    split = (f"| {threads} | {path} | {update_us:.0f} | {products_us:.0f} | {fixed_us:.0f} | "
             f"{update_us - products_us - fixed_us:.0f} | {products_us / update_us:.0%}{mark} | "
             f"{products_us / (update_us - fixed_us):.0%}{mark} |")
    return row, split


def update_section(args: argparse.Namespace) -> str:
    """Section 2: one fresh process per thread count and path; table updates/s against the
    matmul rate (the bf16 path only where this CPU has native bfloat16)."""
    skipped = bf16_skip_reason()
    rows = [UPDATE_HEAD, "|" + "---|" * (UPDATE_HEAD.count("|") - 1)]
    split = [SPLIT_HEAD, "|" + "---|" * (SPLIT_HEAD.count("|") - 1)]
    for threads in args.threads:
        for kind in [k for k in UPDATE_PATHS if not (k == "bf16" and skipped)]:
            r = run_child({"kind": "update", "threads": threads, "hidden": args.hidden,
                           "batch_size": args.batch_size, "buffer_size": args.buffer_size,
                           "updates": args.updates, "path": kind})
            row, split_row = update_rows(threads, UPDATE_PATHS[kind], r)
            rows.append(row)
            split.append(split_row)
            outcome = failed_cell(r) if "failed" in r else (
                f"{1 / r['update_s_without_sampling']:.1f} updates/s, cpu {r['cpu_share']:.2f}")
            log(f"update threads={threads} {UPDATE_PATHS[kind]}: {outcome}")
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
             f"matmuls). threads: asked (torch reported). {CPU_NOTE} Here the fractions are "
             f"ratios of times taken in one process, marked by that process's share.\n\n")
    where = ("\n\nWhere one update's time goes (without sampling). 'its products alone': the "
             "products below timed alone, as the matmul rate above times them. 'fixed': the same "
             "update on networks 8-8 with batch 8, whose products are next to nothing, so its "
             "time is what an update costs whatever the network size (Python, torch's "
             "per-operation dispatch, kernel launches). 'the rest': the elementwise work that "
             "grows with the networks (bias, ReLU and its mask, Adam, the soft update) and "
             "the products running slower inside the update than alone (their operands no "
             "longer all in cache). The last column is the fraction the update would reach "
             "if the fixed part cost nothing.\n\n")
    return (intro + "\n".join(rows) + (f"\n\n{skipped}." if skipped else "") + where
            + "\n".join(split)
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
    """RSS growth of a dpgkit ReplayBuffer of ``spec['capacity']``: right after construction
    (numpy's zeros are lazily mapped, so little is resident; tracemalloc, which counts them, is
    on for this part only) and after filling every slot through ``add``, with the fill's time.
    tracemalloc is off for that fill: tracing every temporary of every ``add`` makes it about 9
    times slower (a traced 1M fill took 9 minutes on a busy 2-core machine), so what ``add``
    allocates beyond the arrays is traced on a fill of a smaller buffer (:func:`traced_fill`).

    The untraced fill of 1M still takes some 45 CPU seconds (a minute and more on a busy
    machine): ``ReplayBuffer.add`` stores one stream's transitions one at a time, some 20 numpy
    calls on tiny arrays each, and splits a batch of one stream's rows into single rows too, so
    adding in chunks does not help. Only a vectorized add in dpgkit/replay.py would.
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
    tracemalloc.stop()
    del replay
    rss_before_fill, _ = rss_bytes()
    with stopwatch(1) as clock:
        replay = fill(ReplayBuffer(capacity, obs_dim, action_dim), chunk)
    rss_filled, rss_peak = rss_bytes()
    fields = {name: (list(a.shape), str(a.dtype), int(a.nbytes))
              for name, a in ((name, getattr(replay, name)) for name in REPLAY_FIELDS)}
    fields["transitions held"] = ([len(replay)], "", 0)
    return {"fields": fields, "rss_allocated": rss_allocated - rss0,
            "rss_filled": rss_filled - rss_before_fill, "rss_peak": rss_peak - rss_before_fill,
            "traced_allocated": traced_allocated, "fill_s": clock["seconds"],
            "fill_cpu_share": clock["cpu_share"],
            **traced_fill(min(capacity, TRACED_CAPACITY), obs_dim, action_dim, chunk)}


def traced_fill(capacity: int, obs_dim: int, action_dim: int, chunk: tuple[np.ndarray, ...]
                ) -> dict[str, int]:
    """tracemalloc of filling a ReplayBuffer of ``capacity`` through ``add`` (as
    :func:`measure_replay_memory` fills its own, past one wrap of the ring), beyond the buffer's
    arrays: what is left after the fill, and the most at once while filling (``add``'s
    temporaries)."""
    from dpgkit.replay import ReplayBuffer

    tracemalloc.start()
    replay = ReplayBuffer(capacity, obs_dim, action_dim)
    arrays, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    fill(replay, chunk)
    left, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"traced_capacity": capacity, "traced_left": left - arrays,
            "traced_peak": peak - arrays}


def memory_section(args: argparse.Namespace) -> str:
    """Section 3: measured memory of a full 1M-transition buffer against its fields' bytes."""
    r = run_child({"kind": "memory", "capacity": args.buffer_size,
                   "obs_dim": HALFCHEETAH_OBS_DIM, "action_dim": HALFCHEETAH_ACTION_DIM})
    intro = (f"## 3. Replay buffer memory, {args.buffer_size:,} HalfCheetah transitions\n\n"
             f"dpgkit `ReplayBuffer({args.buffer_size}, {HALFCHEETAH_OBS_DIM}, "
             f"{HALFCHEETAH_ACTION_DIM})`, filled through `add`, one transition at a time, from "
             f"10,000 random transitions strung into 1,000-step episodes and added again and "
             f"again (made before the baseline; `add`'s own temporaries count in the peaks), in "
             f"a fresh process. Each observation is stored once. tracemalloc is off during that "
             f"fill (tracing every temporary of every `add` makes it about 9 times slower): the "
             f"buffer whose fill it traces is smaller. MB = 10^6 bytes.\n\n")
    if "failed" in r:
        return intro + failed_cell(r) + "\n"
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
        f"| measured: tracemalloc beyond the arrays after filling / at the peak while filling "
        f"(`add`'s temporaries), in a buffer of {r['traced_capacity']:,} filled the same way | | "
        f"| {r['traced_left'] / 1e6:.3f} / {r['traced_peak'] / 1e6:.3f} | |",
        f"| transitions held after the fill (one row per episode end) | {held:,} | | | |",
    ]
    took = (f"\n\nThe fill of {args.buffer_size:,} took {r['fill_s']:.0f} s (cpu share "
            f"{r['fill_cpu_share']:.2f}): `ReplayBuffer.add` stores a single env's transitions "
            f"one at a time, a batch of one stream's rows too, some 20 numpy calls each.\n")
    return intro + "\n".join(rows) + took


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


def write_report(out: Path, parts: list[str]) -> str:
    """Write the header and the sections so far to ``out`` (whole: through a temporary file
    renamed over it, so a benchmark stopped while writing leaves the last report) and return
    the text."""
    text = "\n".join(parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(text)
    partial.replace(out)
    return text


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        child_main(json.loads(args.one))
        return
    started = time.perf_counter()
    parts = [header()]
    sections = {"learn": learning_section, "update": update_section, "memory": memory_section}
    for done, name in enumerate(args.sections, 1):
        log(f"section {name} ...")
        parts.append(sections[name](args))
        write_report(args.out, [*parts, f"Incomplete: sections {','.join(args.sections[:done])} "
                                         f"of {','.join(args.sections)} so far.\n"])
        log(f"section {name} written to {args.out}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    parts.append(f"Total benchmark time {time.perf_counter() - started:.0f} s; "
                 f"load average at end: {load}.\n")
    print(write_report(args.out, parts))
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
