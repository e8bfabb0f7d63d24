"""The advantage actor-critic loss (Mnih et al. 2016, eq. in section 4) over a batch of rollouts.

loss = policy_loss + value_coef * value_loss - entropy_coef * entropy, with
  policy_loss = -mean(A_t * log pi(a_t | s_t)),  value_loss = mean((R_t - V(s_t))^2),
averaged over valid transitions only. A_t and R_t come from returns.py and are constants (no gradient).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from relayrl.model import ActorCritic
from relayrl.returns import gae_advantages
from relayrl.rollout import Rollout


@dataclass(frozen=True)
class LossConfig:
    gamma: float = 0.99
    gae_lambda: float = 1.0
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    normalize_advantage: bool = False


@dataclass
class LossTerms:
    loss: torch.Tensor
    policy_loss: float
    value_loss: float
    entropy: float
    num_samples: int


def _stack(rollouts: Sequence[Rollout], name: str, device: torch.device) -> torch.Tensor:
    """Concatenate one field of several rollouts along the environment axis (axis 1)."""
    arrays = [getattr(r, name) for r in rollouts]
    array = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=1)
    return torch.as_tensor(array, device=device)


def actor_critic_loss(
    model: ActorCritic, rollouts: Sequence[Rollout], config: LossConfig, device: torch.device | None = None
) -> LossTerms:
    """The loss over rollouts that share n_steps (their environments are batched side by side)."""
    device = device or next(model.parameters()).device
    obs = _stack(rollouts, "observations", device)
    T, N = obs.shape[:2]
    bootstrap = torch.cat([torch.as_tensor(r.bootstrap_observations, device=device) for r in rollouts])
    rewards = _stack(rollouts, "rewards", device)
    terminated = _stack(rollouts, "terminated", device)
    ended = terminated | _stack(rollouts, "truncated", device)
    valid = _stack(rollouts, "valid", device).float()
    actions = _stack(rollouts, "actions", device)

    flat_obs = obs.reshape(T * N, *obs.shape[2:])
    all_values = model.value(torch.cat([flat_obs, bootstrap]))
    values = all_values[: T * N].reshape(T, N)
    with torch.no_grad():
        next_values = torch.cat([values[1:], all_values[T * N :].unsqueeze(0)])
        advantages = gae_advantages(
            rewards, values, next_values, terminated, ended, config.gamma, config.gae_lambda
        )
        returns = advantages + values
    count = valid.sum().clamp(min=1.0)
    if config.normalize_advantage:
        mean = (advantages * valid).sum() / count
        std = (((advantages - mean) ** 2 * valid).sum() / count).sqrt()
        advantages = (advantages - mean) / (std + 1e-8)

    log_probs, entropy = model.log_prob_entropy(flat_obs, actions.reshape(T * N, *actions.shape[2:]))
    log_probs, entropy = log_probs.reshape(T, N), entropy.reshape(T, N)
    policy_loss = -(advantages * log_probs * valid).sum() / count
    value_loss = ((returns - values) ** 2 * valid).sum() / count
    mean_entropy = (entropy * valid).sum() / count
    loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * mean_entropy
    return LossTerms(
        loss=loss,
        policy_loss=float(policy_loss),
        value_loss=float(value_loss),
        entropy=float(mean_entropy),
        num_samples=T * N,
    )
