"""Plain-Python reference implementations used by the unit tests, written from the papers' definitions and
deliberately in a different form from relayrl/returns.py (explicit sums rather than backward recursions)."""

from __future__ import annotations

import numpy as np


def gae_reference(rewards, values, next_values, terminated, truncated, gamma, lam):
    """GAE (Schulman et al. 2016, eq. 16) as the explicit finite sum
        A_t = sum_{l=0}^{k} (gamma * lam)^l * delta_{t+l},
        delta_s = r_s + gamma * V(s_{s+1}) * [s_{s+1} not terminal] - V(s_s),
    where t + k is the last step of t's episode inside the rollout (the step that terminated or was
    truncated, or the rollout's last step). ``next_values[s]`` is V of the observation after step s.
    """
    T, N = rewards.shape
    out = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            total = 0.0
            for s in range(t, T):
                bootstrap = 0.0 if terminated[s, n] else gamma * next_values[s, n]
                delta = rewards[s, n] + bootstrap - values[s, n]
                total += (gamma * lam) ** (s - t) * delta
                if terminated[s, n] or truncated[s, n]:
                    break
            out[t, n] = total
    return out


def n_step_return_reference(rewards, next_values, terminated, truncated, gamma):
    """R_t = sum_{s=t}^{t+k} gamma^(s-t) r_s + gamma^(k+1) V(after t+k) unless t+k terminated (Mnih et al. 2016)."""
    T, N = rewards.shape
    out = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            total = 0.0
            for s in range(t, T):
                total += gamma ** (s - t) * rewards[s, n]
                if terminated[s, n]:
                    break
                if truncated[s, n] or s == T - 1:
                    total += gamma ** (s - t + 1) * next_values[s, n]
                    break
            out[t, n] = total
    return out
