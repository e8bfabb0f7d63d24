"""Returns and advantages for n-step actor-critic (Mnih et al. 2016; GAE: Schulman et al. 2016).

All arrays are time-major [T, N]: NumPy, or for gae_advantages torch tensors too (the learner's loss runs it
where its batch is, so a GPU learner's update needs no trip to the host).
``next_values[t]`` is V of the true state after step t: the next observation in the rollout, or the
rollout's bootstrap observation for the last step. With Gymnasium's next-step autoreset, the observation
after a step that ended an episode IS that episode's final observation, so a truncated (time-limit)
episode bootstraps from it, while a terminated one bootstraps from nothing.
``ended = terminated | truncated`` stops the recursion at episode borders.
"""

from __future__ import annotations

import numpy as np


def n_step_returns(
    rewards: np.ndarray, next_values: np.ndarray, terminated: np.ndarray, ended: np.ndarray, gamma: float
) -> np.ndarray:
    """R_t = r_t + gamma * (1 - terminated_t) * (V(s_{t+1}) if the episode ended or t = T-1, else R_{t+1})."""
    returns = np.empty_like(rewards)
    future = next_values[-1]
    for t in reversed(range(rewards.shape[0])):
        future = np.where(ended[t], next_values[t], future)
        returns[t] = rewards[t] + gamma * ~terminated[t] * future
        future = returns[t]
    return returns


def gae_advantages(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    ended: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """A_t = delta_t + gamma * lam * (1 - ended_t) * A_{t+1},
    where delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t).

    With lam = 1 this is exactly the n-step advantage: n_step_returns(...) - values.
    """
    if hasattr(rewards, "unbind"):  # torch tensors, on the learner's device: rows as views, stacked once
        import torch  # loaded already, since the arguments are tensors

        # flags as the values' dtype (a float times a bool tensor would be torch's default float32)
        deltas = rewards + (~terminated).to(next_values.dtype) * (gamma * next_values) - values
        rows, carry = list(deltas.unbind(0)), ((~ended).to(deltas.dtype) * (gamma * lam)).unbind(0)
        for t in range(len(rows) - 2, -1, -1):  # two kernels a step; writing rows in place costs more
            rows[t] = rows[t] + carry[t] * rows[t + 1]
        return torch.stack(rows)
    deltas = rewards + gamma * ~terminated * next_values - values
    advantages = np.empty_like(rewards)
    running = np.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = deltas[t] + gamma * lam * ~ended[t] * running
        advantages[t] = running
    return advantages
