"""Published results to hold dpgkit's against (facts with their sources; no code of theirs).

TD3_CURVES: TD3's mean evaluation return over its 10 published seeds, every 5,000 env steps from
0 to 1M, read from the authors' saved learning curves (Fujimoto et al. 2018; evaluation every
5,000 steps, 10 episodes, no noise; MuJoCo v1 tasks). TD3_CURVE_STDS: the std over those seeds
at the same points. Both come from ``dpgkit/data/td3_curves.json``, which says how it was read.

TABLE_1: Fujimoto et al. 2018, Table 1: max average return over 10 seeds within 1M steps.
"""

import json
from pathlib import Path

_CURVES = json.loads((Path(__file__).parent / "data" / "td3_curves.json").read_text())
CURVE_SOURCE: str = _CURVES["source"]
STEPS_PER_POINT: int = _CURVES["steps_per_point"]

TD3_CURVES: dict[str, dict[int, float]] = {
    task: {i * STEPS_PER_POINT: value for i, value in enumerate(data["mean"])}
    for task, data in _CURVES["tasks"].items()}
TD3_CURVE_STDS: dict[str, dict[int, float]] = {
    task: {i * STEPS_PER_POINT: value for i, value in enumerate(data["std"])}
    for task, data in _CURVES["tasks"].items()}

TABLE_1: dict[str, dict[str, float]] = {
    "HalfCheetah": {"ddpg-baselines": 3305.60, "our-ddpg": 8577.29, "td3": 9636.95},
    "Hopper": {"ddpg-baselines": 2020.46, "our-ddpg": 1860.02, "td3": 3564.07},
    "Walker2d": {"ddpg-baselines": 1843.85, "our-ddpg": 3098.11, "td3": 4682.82},
    "Ant": {"ddpg-baselines": 1005.30, "our-ddpg": 888.77, "td3": 4372.44},
    "Reacher": {"ddpg-baselines": -6.51, "our-ddpg": -4.01, "td3": -3.60},
    "InvertedPendulum": {"ddpg-baselines": 1000, "our-ddpg": 1000, "td3": 1000},
    "InvertedDoublePendulum": {"ddpg-baselines": 9355.52, "our-ddpg": 8369.95, "td3": 9337.47},
}


def task_name(env_id: str) -> str:
    """'HalfCheetah-v5' -> 'HalfCheetah' (the key of the tables above)."""
    return env_id.split("/")[-1].rsplit("-v", 1)[0]


def find_task(name: str) -> str | None:
    """The key of :data:`TD3_CURVES` that ``name`` (a task or env id, any case) stands for."""
    wanted = task_name(name).lower()
    return next((task for task in TD3_CURVES if task.lower() == wanted), None)


def published_at(task: str, steps: int) -> tuple[float, float] | None:
    """TD3's published (mean, seed std) at the curve point nearest ``steps``, or None."""
    if task not in TD3_CURVES:
        return None
    point = min(round(steps / STEPS_PER_POINT) * STEPS_PER_POINT,
                max(TD3_CURVES[task]))
    return TD3_CURVES[task][point], TD3_CURVE_STDS[task][point]


WARMUP_STEPS: dict[str, int] = {"HalfCheetah": 10_000, "Ant": 10_000}
"""Fujimoto et al. 2018's random start steps where they differ from the presets' 1,000."""
