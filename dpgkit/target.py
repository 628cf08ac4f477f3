"""Stopping at a target return: what ``summary.json`` records and what the run says.

With ``target_return`` X, the :class:`~dpgkit.loop.Trainer` notes the env steps and training
seconds of the first evaluation whose mean return reached X (``target_reached``, checkpointed,
so a resumed run keeps it); with ``stop_at_target`` (the default) the run ends there, with the
usual final checkpoint, curve and summary.
"""

from typing import Any


def target_record(target_return: float | None, reached: dict[str, float] | None
                  ) -> dict[str, Any]:
    """The summary's keys for a target (none without one): the target, and the env steps and
    seconds at which an evaluation's mean first reached it (null if it never did)."""
    if target_return is None:
        return {}
    return {"target_return": target_return,
            "target_reached_at_env_steps": None if reached is None else int(reached["env_steps"]),
            "target_reached_at_seconds": None if reached is None else float(reached["seconds"])}


def reached_message(target_return: float, reached: dict[str, float], stops: bool) -> str:
    """One line for the first evaluation that reached the target."""
    then = "stopping the run" if stops else "training on (stop_at_target is false)"
    return (f"dpgkit: the evaluation reached the target return {target_return:g} at env step "
            f"{int(reached['env_steps'])} ({reached['seconds']:.0f} s of training): {then}")
