"""Published results to hold dpgkit's against (facts with their sources; no code of theirs).

TD3_CURVES: TD3's mean evaluation return over its 10 published seeds at given env steps, read from
the authors' saved learning curves (Fujimoto et al. 2018; evaluation every 5,000 steps, 10
episodes, no noise; MuJoCo v1 tasks).

TABLE_1: Fujimoto et al. 2018, Table 1: max average return over 10 seeds within 1M steps.
"""

TD3_CURVES: dict[str, dict[int, float]] = {
    "HalfCheetah": {50_000: 3352, 100_000: 5514, 200_000: 6833, 300_000: 7697, 500_000: 8445,
                    1_000_000: 9567},
    "Hopper": {50_000: 285, 100_000: 660, 200_000: 2441, 300_000: 2410, 500_000: 2933,
               1_000_000: 3391},
    "Walker2d": {50_000: 368, 100_000: 770, 200_000: 2421, 300_000: 3336, 500_000: 4196,
                 1_000_000: 4413},
}

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


WARMUP_STEPS: dict[str, int] = {"HalfCheetah": 10_000, "Ant": 10_000}
"""Fujimoto et al. 2018's random start steps where they differ from the presets' 1,000."""
