"""Gymnasium vector environments: one NumPy-vectorised env when the id has a vector entry point
(CartPole: ~7x faster at 64 envs), else a synchronous loop over single envs.

Both use Gymnasium's default next-step autoreset; rollouts mark the reset transitions invalid.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


def make_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    spec = gym.spec(env_id)  # raises gymnasium's error naming the unknown id
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    autoreset = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    if autoreset != gym.vector.AutoresetMode.NEXT_STEP:
        env.close()
        raise ValueError(f"{env_id}: vector env autoresets in mode {autoreset}; RelayRL expects NEXT_STEP")
    return env


def single_spaces(env_id: str) -> tuple[gym.Space, gym.Space]:
    """The observation and action space of one environment of ``env_id``."""
    env = gym.make(env_id)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def env_action(actions: np.ndarray, action_space: gym.Space) -> np.ndarray:
    """What the environment receives: Gaussian samples are clipped to the Box (the raw sample is trained on)."""
    if isinstance(action_space, gym.spaces.Box):
        return np.clip(actions, action_space.low, action_space.high)
    return actions
