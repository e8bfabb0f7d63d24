"""Tiny envs, one per kind of space RelayRL reads, that a policy learns in seconds; given as
``tests.space_envs:Match...-v0`` (importing this module registers them), and a user's own features extractor.

Each step shows a random target in the observation; the reward is the share of the action's parts that match
it, so a random policy earns 1/3 (1/2 for bits) of the best return, 8 per 8-step episode.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

LENGTH = 8


class MatchEnv(gym.Env):
    kind = "box2d"

    def __init__(self, kind: str = "box2d") -> None:
        self.kind = kind
        self.action_space = {
            "multi_discrete": gym.spaces.MultiDiscrete([3, 3]),
            "multi_binary": gym.spaces.MultiBinary(4),
        }.get(kind, gym.spaces.Discrete(3))
        self.observation_space = {
            "box2d": gym.spaces.Box(-1.0, 1.0, (3, 4), np.float32),  # a 2-D vector observation, flattened
            "image": gym.spaces.Box(0, 255, (6, 6, 2), np.uint8),  # a small channels-last image
            "dict": gym.spaces.Dict({"goal": gym.spaces.Discrete(3), "noise": gym.spaces.Box(-1, 1, (2,))}),
            "multi_discrete": gym.spaces.Box(0.0, 1.0, (6,), np.float32),
            "multi_binary": gym.spaces.Box(0.0, 1.0, (4,), np.float32),
        }[kind]
        self.steps = 0

    def _observe(self):
        rng = self.np_random
        if self.kind == "multi_binary":
            self.target = rng.integers(0, 2, 4)
            return self.target.astype(np.float32)
        if self.kind == "multi_discrete":
            self.target = rng.integers(0, 3, 2)
            obs = np.zeros(6, np.float32)
            obs[[self.target[0], 3 + self.target[1]]] = 1.0
            return obs
        self.target = int(rng.integers(0, 3))
        if self.kind == "box2d":
            obs = rng.uniform(-0.2, 0.2, (3, 4)).astype(np.float32)
            obs[self.target] = 1.0
            return obs
        if self.kind == "image":
            obs = np.zeros((6, 6, 2), np.uint8)
            obs[:, 2 * self.target : 2 * self.target + 2, 0] = 255  # a bright band in channel 0
            obs[..., 1] = rng.integers(0, 40, (6, 6))  # dim noise in channel 1
            return obs
        return {"goal": self.target, "noise": rng.uniform(-1, 1, 2).astype(np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._observe(), {}

    def step(self, action):
        reward = float(np.mean(np.asarray(action) == self.target))
        self.steps += 1
        return self._observe(), reward, False, self.steps >= LENGTH, {}


for _kind, _name in [("box2d", "Match2D"), ("image", "MatchImage"), ("dict", "MatchDict"),
                     ("multi_discrete", "MatchMultiDiscrete"), ("multi_binary", "MatchMultiBinary")]:
    if f"{_name}-v0" not in gym.registry:
        gym.register(f"{_name}-v0", entry_point=MatchEnv, kwargs={"kind": _kind})


class TinyExtractor(nn.Module):
    """A user's own features extractor: a Dict observation's keys concatenated, then one ReLU layer."""

    def __init__(self, observation_space: gym.spaces.Dict, width: int = 16) -> None:
        super().__init__()
        inputs = sum(int(np.prod(space.shape)) for space in observation_space.spaces.values())
        self.net = nn.Sequential(nn.Linear(inputs, width), nn.ReLU())
        self.features_dim = width

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(torch.cat([observations[key] for key in sorted(observations)], dim=1))
