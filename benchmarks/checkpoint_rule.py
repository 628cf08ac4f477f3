"""TD7's policy checkpoints in a run: the rule replayed over the training episodes of its
metrics.csv, beside the evaluations of the policy it deployed.

    python benchmarks/checkpoint_rule.py RUN_DIR [RUN_DIR ...]

TD7 evaluates, exports and deploys its checkpointed policy: the last one whose worst return
over its assessment (one episode and at least ``checkpoint_min_steps`` env steps until
``checkpoint_late_after_updates`` updates, then ``checkpoint_late_episodes``) matched the bar
the one before it set. So the evaluation can stay flat while training climbs, or drop when a
policy that beat the bar once falls in some evaluation episodes. This replays dpgkit's rule
(the functions of ``dpgkit.equations``, with the run's ``config.json``) over the training
episodes in ``metrics.csv``, so it also reads runs written before TensorBoard's
``checkpoint_bar`` existed, and prints a row per run: the checkpoints taken, the last one
(env step and bar), the final and the best evaluation, and the training episodes' median return
over the last 20,000 env steps. docs/presets.md (``td7``) quotes it.

    python benchmarks/checkpoint_rule.py --policies RUN_DIR [RUN_DIR ...]

adds a second table: both policies of each run's newest checkpoint (``dpgkit eval --policy``),
the deployed (checkpointed) one and the current one (being trained), played from the start
states of the run's evaluations, so the deployed one repeats the run's final evaluation; and
their means over the runs.
"""

import argparse
import csv
import json
import statistics
from pathlib import Path
from typing import Any

from speed_common import table_start

from dpgkit.agent import POLICIES
from dpgkit.envs import ActionScaler, make_env
from dpgkit.equations import reset_best_min_return, should_checkpoint, should_end_assessment
from dpgkit.evaluation import eval_seeds, evaluate
from dpgkit.saved import read_model

Episode = tuple[int, int, float, int]  # env steps at its end, updates before it, return, length
TRAINING_WINDOW = 20_000  # env steps of training episodes the median is taken over


def replay_checkpoints(config: dict[str, Any], episodes: list[Episode]) -> list[tuple[int, float]]:
    """The checkpoints the run took, (env steps, bar), from its training episodes in order: the
    first that ends past ``warmup_steps`` ends the warm-up and is not assessed (as
    ``TD7Agent.on_episode_end``); the reset applies once the updates passed
    ``checkpoint_late_after_updates`` (as ``TD7Agent.update``)."""
    c = config
    warm, reset_done = True, False
    assessed, assessed_steps, min_return, bar = 0, 0, 1e8, -1e8
    max_assessed = c["checkpoint_early_episodes"]
    checkpoints = []
    for env_steps, updates, episode_return, length in episodes:
        if not reset_done and updates > c["checkpoint_late_after_updates"]:
            bar = reset_best_min_return(bar, c["checkpoint_reset_weight"])
            max_assessed, reset_done = c["checkpoint_late_episodes"], True
        if warm:
            warm = env_steps <= c["warmup_steps"]
            continue
        assessed, assessed_steps = assessed + 1, assessed_steps + length
        min_return = min(min_return, episode_return)
        if should_checkpoint(min_return, bar, assessed, max_assessed, assessed_steps,
                             c["checkpoint_min_steps"]):
            bar = min_return
            checkpoints.append((env_steps, bar))
        elif not should_end_assessment(min_return, bar):
            continue
        assessed, assessed_steps, min_return = 0, 0, 1e8
    return checkpoints


def read_run(run_dir: Path) -> tuple[dict[str, Any], list[Episode], list[tuple[int, float, float]]]:
    """A TD7 run's config, training episodes and evaluations (env steps, mean, std)."""
    if not (run_dir / "config.json").is_file() or not (run_dir / "metrics.csv").is_file():
        raise SystemExit(f"{run_dir}: not a run directory (no config.json and metrics.csv)")
    config = json.loads((run_dir / "config.json").read_text())
    if config.get("algorithm") != "td7" or not config.get("policy_checkpoints"):
        raise SystemExit(f"{run_dir}: not a TD7 run with policy checkpoints (config.json)")
    episodes, evaluations = [], []
    with (run_dir / "metrics.csv").open() as stream:
        for row in csv.DictReader(stream):
            steps = int(row["env_steps"])
            if row["episode_return"]:
                episodes.append((steps, int(row["updates"]), float(row["episode_return"]),
                                 int(row["episode_length"])))
            if row["eval_return_mean"]:
                evaluations.append((steps, float(row["eval_return_mean"]),
                                    float(row["eval_return_std"])))
    return config, episodes, evaluations


def run_row(run_dir: Path) -> str:
    """The table row of one run."""
    config, episodes, evaluations = read_run(run_dir)
    checkpoints = replay_checkpoints(config, episodes)
    last = f"{checkpoints[-1][0]:,}: {checkpoints[-1][1]:.0f}" if checkpoints else "none"
    end = episodes[-1][0] if episodes else 0
    recent = [ret for steps, _, ret, _ in episodes if steps > end - TRAINING_WINDOW]
    median = f"{statistics.median(recent):.0f}" if recent else "-"
    final = evaluations[-1] if evaluations else None
    best = max(evaluations, key=lambda evaluation: evaluation[1], default=None)
    final_cell = f"{final[1]:.0f} +- {final[2]:.0f} at {final[0]:,}" if final else "-"
    best_cell = f"{best[1]:.0f} at {best[0]:,}" if best else "-"
    return (f"| {config['env_id']} seed {config['seed']} | {len(checkpoints)} | {last} | "
            f"{final_cell} | {best_cell} | {median} |")


def report(run_dirs: list[Path]) -> str:
    """The table of ``run_dirs``."""
    head = ("| run | checkpoints | the last (env step: bar) | final evaluation | best evaluation "
            "| training episodes, last 20,000 env steps: median |")
    return "\n".join([*table_start(head), *(run_row(run_dir) for run_dir in run_dirs)])


def final_policies(run_dir: Path) -> tuple[str, int, dict[str, list[float]]]:
    """The run's name, the env steps of its newest checkpoint and, per policy of
    :data:`dpgkit.agent.POLICIES`, its returns from the start states of the run's evaluations."""
    read_run(run_dir)  # a TD7 run with policy checkpoints, or a clear refusal
    loaded, _ = read_model(run_dir)
    config = loaded.agent.config
    env = make_env(loaded.env["env_id"], **config.env_arguments())
    seeds = eval_seeds(config.seed, config.eval_episodes)
    try:
        returns = {which: evaluate(loaded.agent.chosen_policy(which)[1], env,
                                   ActionScaler.for_space(env.action_space), seeds).tolist()
                   for which in POLICIES}
    finally:
        env.close()
    return f"{loaded.env['env_id']} seed {config.seed}", loaded.env_steps, returns


def policies_report(run_dirs: list[Path]) -> str:
    """The table of both final policies of ``run_dirs``, and a row of their means."""
    head = ("| run | newest checkpoint | " + " | ".join(f"{which} policy" for which in POLICIES)
            + " | current - deployed |")
    rows, means = [], {which: [] for which in POLICIES}
    for run_dir in run_dirs:
        name, env_steps, returns = final_policies(run_dir)
        mean = {which: statistics.fmean(values) for which, values in returns.items()}
        cells = [f"{mean[w]:.0f} +- {statistics.pstdev(returns[w]):.0f}" for w in POLICIES]
        rows.append(f"| {name} | {env_steps:,} | {' | '.join(cells)} | "
                    f"{mean['current'] - mean['deployed']:+.0f} |")
        for which in POLICIES:
            means[which].append(mean[which])
    overall = {which: statistics.fmean(values) for which, values in means.items()}
    rows.append(f"| mean of the {len(run_dirs)} runs | | "
                + " | ".join(f"{overall[w]:.0f}" for w in POLICIES)
                + f" | {overall['current'] - overall['deployed']:+.0f} |")
    return "\n".join([*table_start(head), *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="TD7 run directories")
    parser.add_argument("--policies", action="store_true",
                        help="also play both policies of each run's newest checkpoint")
    args = parser.parse_args()
    print(report(args.run_dirs))
    if args.policies:
        print()
        print(policies_report(args.run_dirs))


if __name__ == "__main__":
    main()
