"""A user's own environment, as a package of theirs would ship it: importing the module registers
``Corridor-v0``, whose ``length`` keyword sets the observation size. Tests use it as ``module:Corridor-v0``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Walk right along a corridor of ``length`` cells (one-hot position) to a reward of 1 at its end."""

    def __init__(self, length: int = 10) -> None:
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (length,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.position = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self.position] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = 0
        return self._obs(), {}

    def step(self, action):
        self.position = max(0, min(self.length - 1, self.position + (1 if int(action) == 1 else -1)))
        done = self.position == self.length - 1
        return self._obs(), float(done), done, False, {}


gym.register("Corridor-v0", entry_point=Corridor, max_episode_steps=50)
