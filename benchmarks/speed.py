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

Four sections, each printed as a markdown table. ``--out`` (bench/speed.md) is rewritten after
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
4. **td7**: TD7's update (on autograd) at HalfCheetah shapes, its products counted as in 2
   (:func:`speed_td7.td7_update_gemms`), its time split the same way, and a torch profile of its
   operators: what a hand-written TD7 path could gain at most (benchmarks/speed_td7.py).

Every measurement runs in a fresh subprocess (``speed.py --one SPEC``) so thread settings,
allocator state and warm caches do not leak between them; the child prints one JSON line.
"""

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import speed_learning
import speed_memory
import speed_td7
import speed_update
from speed_common import header, log, package_version

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

SECTIONS = ("learn", "update", "memory", "td7")


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def str_list(text: str) -> list[str]:
    return [x for x in text.split(",") if x]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", type=str_list, default=list(SECTIONS),
                        help=f"which sections to run: {','.join(SECTIONS)}")
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
    parser.add_argument("--td7-updates", type=int, default=100,
                        help="updates per timing round of section td7 (even)")
    parser.add_argument("--td7-buffer-size", type=int, default=100_000,
                        help="transitions in the LAP replay of section td7")
    parser.add_argument("--out", type=Path, default=Path("bench/speed.md"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one measurement
    args = parser.parse_args(argv)
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}: use "
                     f"{','.join(SECTIONS)}")
    if args.td7_updates < 2 or args.td7_updates % 2:
        parser.error(f"--td7-updates must be even (got {args.td7_updates}): each timing then "
                     "holds as many updates with an actor step as without (policy_delay 2)")
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


def child_main(spec: dict[str, Any]) -> None:
    """Entry point of a child: run the measurement ``spec['kind']`` and print its JSON."""
    measure = {"dpgkit": speed_learning.measure_dpgkit_learning,
               "sb3": speed_learning.measure_sb3_learning,
               "update": speed_update.measure_update,
               "memory": speed_memory.measure_replay_memory,
               "td7": speed_td7.measure_td7_update}[spec["kind"]]
    print(json.dumps(measure(spec)), flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        child_main(json.loads(args.one))
        return
    started = time.perf_counter()
    parts = [header()]
    sections = {"learn": speed_learning.learning_section, "update": speed_update.update_section,
                "memory": speed_memory.memory_section, "td7": speed_td7.td7_section}
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
