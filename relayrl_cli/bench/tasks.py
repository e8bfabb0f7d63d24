"""A MultiDiscrete task for the domain table (no standard Gymnasium env has MultiDiscrete actions):
``relayrl_cli.bench.tasks:TwoWalkers-v0``, importing this module registers it.

Two walkers on a line of 9 cells, each with its own goal cell. Observation: MultiDiscrete([9, 9, 9, 9]), the
walkers' cells and their goals (one-hot for the network). Action: MultiDiscrete([3, 3]), each walker steps left,
stays or steps right, at once: a joint action of 9. Reward each step: minus the walkers' summed distance to
their goals over 8, so 0 is the best a step can earn; 16 steps an episode. A random policy scores about -11.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

CELLS, LENGTH = 9, 16


class TwoWalkers(gym.Env):
    observation_space = gym.spaces.MultiDiscrete([CELLS] * 4)
    action_space = gym.spaces.MultiDiscrete([3, 3])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cells = self.np_random.integers(0, CELLS, 2)
        self.goals = self.np_random.integers(0, CELLS, 2)
        self.steps = 0
        return self._observe(), {}

    def _observe(self) -> np.ndarray:
        return np.concatenate([self.cells, self.goals]).astype(np.int64)

    def step(self, action):
        self.cells = np.clip(self.cells + np.asarray(action) - 1, 0, CELLS - 1)
        self.steps += 1
        reward = -float(np.abs(self.cells - self.goals).sum()) / 8.0
        return self._observe(), reward, False, self.steps >= LENGTH, {}


if "TwoWalkers-v0" not in gym.registry:
    gym.register("TwoWalkers-v0", entry_point=TwoWalkers)
