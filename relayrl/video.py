"""MP4s of greedy episodes, on a headless machine: Gymnasium's RecordVideo over ``rgb_array`` rendering,
encoded by moviepy with imageio-ffmpeg's bundled ffmpeg (``pip install 'relayrl[video]'``)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from relayrl.envs import env_action, is_atari
from relayrl.model import ActorCritic, as_tensors
from relayrl.spaces import map_observation

INSTALL_HINT = "videos need moviepy: pip install 'relayrl[video]'"


def video_support(env_id: str | None = None) -> str | None:
    """None when videos (of ``env_id``) can be written here, else why not."""
    try:
        import moviepy  # noqa: F401 - RecordVideo imports it when it writes
    except ImportError:
        return INSTALL_HINT
    if env_id is not None and is_atari(env_id):
        return f"{env_id}: no videos of Atari envs yet (their policies see AtariVectorEnv's preprocessed frames)"
    return None


@torch.inference_mode()
def record_greedy(
    model: ActorCritic,
    env_id: str,
    folder: str | os.PathLike,
    episodes: int = 1,
    seed: int = 0,
    name: str = "eval",
    env_kwargs: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Play ``episodes`` greedy episodes on one ``rgb_array`` env and write each as FOLDER/NAME-episode-K.mp4
    (at the env's render_fps); returns the files. ``model`` must be on the CPU. A single Gymnasium env, so
    not for Atari ids, whose policies see AtariVectorEnv's preprocessed frames."""
    folder = Path(folder)
    # Rendering starts pygame, whose audio would look for a desktop session and print an error on a
    # headless machine; a video recorder never plays sound.
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    env = gym.make(env_id, render_mode="rgb_array", **(env_kwargs or {}))
    with warnings.catch_warnings():  # a folder of earlier videos is expected (one per evaluation); names differ
        warnings.filterwarnings("ignore", message=".*Overwriting existing videos")
        env = gym.wrappers.RecordVideo(
            env, str(folder), episode_trigger=lambda _: True, name_prefix=name, disable_logger=True
        )
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            done = False
            while not done:
                batch = as_tensors(map_observation(obs, lambda part: np.asarray(part)[None]))
                action, _ = model.act(batch, greedy=True)
                obs, _, terminated, truncated, _ = env.step(env_action(action.numpy()[0], env.action_space))
                done = terminated or truncated
    finally:
        env.close()  # writes the last episode's file
    return [folder / f"{name}-episode-{k}.mp4" for k in range(episodes)]
