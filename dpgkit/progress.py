"""What a run shows while it trains: the evaluation in progress ("evaluating k/N"), the time
left at the run's current pace, and with ``--seeds`` every seed's own lines, each starting with
its name.

An evaluation plays ``eval_episodes`` whole episodes without updates; on a slow env it can take
longer than the training between two evaluations, so the bar says it is evaluating rather than
look stuck.
"""

import io
from collections.abc import Callable
from typing import Any, TextIO

import gymnasium as gym
from rich.progress import ProgressColumn, Task
from rich.text import Text


class EvaluationCounter(gym.Wrapper):
    """The evaluation env, calling ``report(k, n)`` as the k-th of every ``n`` episodes starts
    (each evaluation episode starts with one ``reset``)."""

    def __init__(self, env: gym.Env, episodes: int, report: Callable[[int, int], None]) -> None:
        super().__init__(env)
        self.episodes, self.report, self.resets = episodes, report, 0

    def reset(self, **kwargs: Any) -> Any:
        self.report(self.resets % self.episodes + 1, self.episodes)
        self.resets += 1
        return self.env.reset(**kwargs)


class Pace:
    """The run's rate now: env steps per wall second over the stretch since the previous
    reading, not since the start. The time left follows what the run does now: TD7's 25,000
    warm-up steps, without updates, go about 100 times faster than its steps with updates, and
    the mean since the start promised 35 minutes left at 30,000 steps on Hopper-v5, for 4.4
    hours."""

    def __init__(self, env_steps: int, seconds: float) -> None:
        self.env_steps, self.seconds = env_steps, seconds

    def rate(self, env_steps: int, seconds: float) -> float | None:
        """Steps per second since the previous call (or the start), which this call becomes;
        None, and no new reading, while no env step has passed since it: a resume from a stop
        in a TD7 burst at an evaluation step first finishes that step and evaluates, with no
        step taken to time."""
        if env_steps == self.env_steps:
            return None
        rate = (env_steps - self.env_steps) / max(seconds - self.seconds, 1e-9)
        self.env_steps, self.seconds = env_steps, seconds
        return rate

    def said(self, env_steps: int, seconds: float, steps_left: int) -> str:
        """An evaluation line's end: ``  (N steps/s, T left)`` at :meth:`rate`, without the time
        left when no step is left to run, and nothing while there is no rate to say."""
        rate = self.rate(env_steps, seconds)
        if rate is None:
            return ""
        left = f", {time_left(steps_left / rate)} left" if steps_left > 0 else ""
        return f"  ({rate:.0f} steps/s{left})"


class RateColumn(ProgressColumn):
    """The bar's env steps per second, over rich's last 30 seconds of progress: the pace its
    time remaining is computed from (as :class:`Pace` for the printed lines)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0.0:.0f} steps/s")


def time_left(seconds: float) -> str:
    """4000.0 -> '1h06m', 192.0 -> '3m12s', 45.2 -> '45s'."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class PrefixedLines(io.TextIOBase):
    """A text stream that writes each whole line to ``stream`` with ``prefix`` in front, so that
    the lines of seeds training side by side tell whose they are."""

    def __init__(self, stream: TextIO, prefix: str) -> None:
        self.stream, self.prefix, self.pending = stream, prefix, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        if lines:
            self.stream.write("".join(f"{self.prefix}{line}\n" for line in lines))
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
