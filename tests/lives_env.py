"""A game with lives and rewards far from +-1, as Atari games have: importing the module registers
``Lives-v0`` (used as ``tests.lives_env:Lives-v0``). The Atari training signals (reward clipping, a lost
life ending the episode for training) change what it trains on, and only that, so a test can see them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

LIVES = 3
STEPS_PER_LIFE = 3
REWARDS = (2.5, -4.0)  # alternating, so clipped rewards show both signs
EPISODE_RETURN = sum(REWARDS[t % 2] for t in range(LIVES * STEPS_PER_LIFE))  # the true return of every game


class Lives(gym.Env):
    """A life is lost every STEPS_PER_LIFE steps whatever the agent does; the game ends with the last one.
    ``info["lives"]`` reports the lives left, as ALE does."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0.0, 1.0, (LIVES,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def _lives(self) -> int:
        return LIVES - self.t // STEPS_PER_LIFE

    def _obs(self) -> np.ndarray:
        obs = np.zeros(LIVES, np.float32)
        obs[max(self._lives() - 1, 0)] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {"lives": self._lives()}

    def step(self, action):
        reward = REWARDS[self.t % 2]
        self.t += 1
        return self._obs(), reward, self._lives() == 0, False, {"lives": self._lives()}


gym.register("Lives-v0", entry_point=Lives)
