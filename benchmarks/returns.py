"""Returns benchmark: train presets on tasks for several seeds, then table dpgkit's final
evaluation returns beside the published ones, with the exact command that made each row.

    python benchmarks/returns.py --presets td3,our-ddpg --envs HalfCheetah-v5 --seeds 0-2 \\
        --steps 100000 --out bench/returns
    python benchmarks/returns.py --table-only --out bench/returns   # re-table finished runs

Each (preset, env) runs as one ``dpgkit train --seeds`` command into ``OUT/<preset>-<env>``;
the table goes to ``OUT/returns.md`` and is printed. Published values: TD3's curve at the same
step count (Fujimoto et al. 2018, 10 seeds, v1 tasks) and Table 1 (max over 1M steps).
"""

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from dpgkit.reference import TABLE_1, TD3_CURVES, WARMUP_STEPS, task_name


def run_command(preset: str, env_id: str, seeds: str, steps: int, out: Path,
                extra: list[str]) -> list[str]:
    """The ``dpgkit train`` command of one row; Fujimoto et al.'s warm-up where it differs."""
    warmup = WARMUP_STEPS.get(task_name(env_id))
    if warmup and preset in ("td3", "our-ddpg") and "--warmup_steps" not in extra:
        extra = ["--warmup_steps", str(warmup), *extra]
    return [sys.executable, "-m", "dpgkit.cli", "train", "--preset", preset, "--env", env_id,
            "--seeds", seeds, "--steps", str(steps), "--out", str(out), "--no-progress", *extra]


def published(preset: str, env_id: str, steps: int) -> str:
    task = task_name(env_id)
    parts = []
    if preset == "td3" and steps in TD3_CURVES.get(task, {}):
        parts.append(f"{TD3_CURVES[task][steps]:.0f} (TD3 curve at {steps:,})")
    if preset in TABLE_1.get(task, {}):
        parts.append(f"{TABLE_1[task][preset]:.0f} (Table 1, max over 1M)")
    return "; ".join(parts) or "-"


def table(out: Path) -> str:
    rows = ["| preset | env | env steps | seeds | dpgkit final eval (mean +- std) | per seed | "
            "published | wall (s) | command |", "|---|---|---|---|---|---|---|---|---|"]
    for summary_path in sorted(out.glob("*/summary.json")):
        s = json.loads(summary_path.read_text())
        command = (summary_path.parent / "command.txt").read_text().strip()
        per_seed = ", ".join("diverged" if v is None else f"{v:.0f}"
                             for v in s["per_seed"].values())
        rows.append(f"| {s['preset']} | {s['env_id']} | {s['env_steps']:,} | {len(s['seeds'])} | "
                    f"{s['eval_return_mean']:.1f} +- {s['eval_return_std']:.1f} | {per_seed} | "
                    f"{published(s['preset'], s['env_id'], s['env_steps'])} | "
                    f"{s['wall_seconds']:.0f} | `{command}` |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="td3,our-ddpg")
    parser.add_argument("--envs", default="HalfCheetah-v5")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("bench/returns"))
    parser.add_argument("--table-only", action="store_true", help="only table finished runs")
    args, extra = parser.parse_known_args()  # anything else goes to dpgkit train
    if not args.table_only:
        for env_id in args.envs.split(","):
            for preset in args.presets.split(","):
                run_dir = args.out / f"{preset}-{env_id}"
                command = run_command(preset, env_id, args.seeds, args.steps, run_dir, extra)
                shown = shlex.join(["dpgkit", *command[3:]])
                print(f"$ {shown}", flush=True)
                subprocess.run(command, check=True)
                (run_dir / "command.txt").write_text(shown + "\n")
    text = table(args.out)
    (args.out / "returns.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
