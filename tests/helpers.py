"""Small builders shared by tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from relayrl.rollout import Rollout

CARTPOLE_OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
CARTPOLE_ACT = gym.spaces.Discrete(2)


def random_rollout(T: int = 5, N: int = 3, obs_dim: int = 4, n_actions: int = 2, seed: int = 0,
                   version: int = 0) -> Rollout:
    rng = np.random.default_rng(seed)
    terminated = rng.random((T, N)) < 0.2
    truncated = (rng.random((T, N)) < 0.1) & ~terminated
    valid = np.ones((T, N), bool)
    valid[1:] = ~(terminated | truncated)[:-1]  # next-step autoreset after every episode end
    return Rollout(
        observations=rng.normal(size=(T, N, obs_dim)).astype(np.float32),
        actions=rng.integers(0, n_actions, size=(T, N)).astype(np.int64),
        rewards=rng.normal(size=(T, N)).astype(np.float32),
        terminated=terminated,
        truncated=truncated,
        valid=valid,
        log_probs=np.full((T, N), -0.69, np.float32),
        bootstrap_observations=rng.normal(size=(N, obs_dim)).astype(np.float32),
        policy_version=version,
        episode_returns=np.array([10.0, 12.0], np.float32),
        episode_lengths=np.array([10, 12], np.uint32),
    )
