"""Watching a policy: envs that record every episode to mp4, or show it in a window.

Videos need no display: MuJoCo renders through OSMesa (Debian's ``libosmesa6``), classic control
through pygame, on SDL's dummy video driver (pygame otherwise initialises a real one, whose
"XDG_RUNTIME_DIR is invalid" line looks like a failure on every machine without a desktop
session). A window (``dpgkit eval --render``) needs a display; without one the error says so.
"""

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dpgkit.envs import make_env
from dpgkit.errors import EnvError


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """These environment variables, where the user set none, while the block runs; restored
    after, so a later import in the same process (dm_control's renderer, PyOpenGL) is not
    bound to them."""
    unset = [name for name in values if name not in os.environ]
    os.environ.update({name: values[name] for name in unset})
    try:
        yield
    finally:
        for name in unset:
            os.environ.pop(name, None)


def _offscreen_sdl() -> contextlib.AbstractContextManager[None]:
    """SDL's dummy video driver while pygame starts (it picks its driver once, at its first
    ``pygame.init``), unless the user chose a driver."""
    return _environment(SDL_VIDEODRIVER="dummy")


def has_display() -> bool:
    """Whether a window can open: macOS and Windows always, elsewhere an X11 or Wayland one."""
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def make_video_env(env_id: str, video_dir: Path, env_kwargs: dict[str, Any] | None = None
                   ) -> gym.Env:
    """``env_id`` rendering to RGB arrays, every episode recorded to ``video_dir`` as mp4.

    Works without a display: MuJoCo renders through OSMesa (Debian's ``libosmesa6``), classic
    control through pygame. A missing renderer is an EnvError that names what to install.
    """
    from gymnasium.wrappers import RecordVideo

    # software rendering without a display, unless the user chose otherwise: MuJoCo makes its
    # OpenGL context at the first render, which the recorder's frames then reuse
    software = {} if has_display() else {"MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa"}
    try:
        with _environment(**software):
            env = make_env(env_id, render_mode="rgb_array", **(env_kwargs or {}))
            env.reset(seed=0)
            with _offscreen_sdl():
                frame = env.render()
    except EnvError:
        raise
    except Exception as error:  # the renderers raise many types (OpenGL, pygame, mujoco)
        raise EnvError(f"cannot render {env_id} for a video ({type(error).__name__}: "
                       f"{str(error).strip()[:120]}): MuJoCo tasks need Debian's libosmesa6 "
                       "(apt-get install libosmesa6), classic-control tasks need pygame") from None
    if not isinstance(frame, np.ndarray):
        raise EnvError(f"{env_id} does not render RGB frames, so it cannot be recorded")
    return RecordVideo(env, str(video_dir), episode_trigger=lambda episode: True,
                       name_prefix=env_id.replace("/", "_").replace(":", "_"),
                       disable_logger=True)


def make_window_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``env_id`` rendering every step to a window (Gymnasium's ``render_mode="human"``);
    an EnvError that says so where this machine has no display."""
    if not has_display():
        raise EnvError("--render opens a window, and there is no display here (DISPLAY and "
                       "WAYLAND_DISPLAY are unset): record the episodes instead with --video DIR")
    try:
        return make_env(env_id, render_mode="human", **(env_kwargs or {}))
    except EnvError:
        raise
    except Exception as error:  # a window system that refuses (GLFW, pygame)
        raise EnvError(f"cannot open a window for {env_id} ({type(error).__name__}: "
                       f"{str(error).strip()[:120]}): record the episodes instead with --video "
                       "DIR") from None
