"""The advantage actor-critic loss (Mnih et al. 2016, eq. in section 4) over a batch of rollouts.

loss = policy_loss + value_coef * value_loss - entropy_coef * entropy, with
  policy_loss = -mean(rho_t * A_t * log pi(a_t | s_t)),  value_loss = mean((R_t - V(s_t))^2),
  rho_t = min(1, pi(a_t | s_t) / mu(a_t | s_t)) for data from an older behaviour policy mu, else 1,
averaged over valid transitions only. A_t and R_t come from returns.py and are constants (no gradient).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from relayrl.model import ActorCritic, as_tensors
from relayrl.returns import gae_advantages
from relayrl.rollout import Rollout
from relayrl.spaces import Observation


@dataclass(frozen=True)
class LossConfig:
    gamma: float = 0.99
    gae_lambda: float = 1.0
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    normalize_advantage: bool = False

    @classmethod
    def of(cls, settings: Any) -> LossConfig:
        """The loss settings held by ``settings`` under the same names: the learner's configuration, or the
        RunConfig message actors receive (so both sides compute the same loss)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


@dataclass
class LossTerms:
    loss: torch.Tensor
    policy_loss: float
    value_loss: float
    entropy: float
    num_samples: int
    explained_variance: float = float("nan")  # 1 - Var(R - V) / Var(R) over valid steps (SB3's diagnostic)


def _concatenate(arrays: Sequence[np.ndarray], axis: int) -> np.ndarray:
    if len(arrays) > 1:
        return np.concatenate(arrays, axis=axis)
    return arrays[0] if arrays[0].flags.writeable else arrays[0].copy()


def _stack(rollouts: Sequence[Rollout], name: str, axis: int = 1) -> Observation:
    """Concatenate one field of several rollouts along the environment axis (writable, for torch); a Dict
    observation key by key."""
    values = [getattr(r, name) for r in rollouts]
    if isinstance(values[0], Mapping):
        return {key: _concatenate([v[key] for v in values], axis) for key in values[0]}
    return _concatenate(values, axis)


def _observation_batch(
    obs: Observation, bootstrap: Observation, device: torch.device
) -> torch.Tensor | dict[str, torch.Tensor]:
    """[T, N, ...] observations and the [N, ...] bootstrap ones as one [T*N + N, ...] batch on ``device``."""
    def joined(steps: np.ndarray, after: np.ndarray) -> np.ndarray:
        return np.concatenate([steps.reshape(-1, *steps.shape[2:]), after])

    if isinstance(obs, Mapping):
        return as_tensors({key: joined(obs[key], bootstrap[key]) for key in obs}, device)
    return as_tensors(joined(obs, bootstrap), device)


def actor_critic_loss(
    model: ActorCritic, rollouts: Sequence[Rollout], config: LossConfig, device: torch.device | None = None
) -> LossTerms:
    """The loss over rollouts that share n_steps (their environments are batched side by side)."""
    device = device or next(model.parameters()).device
    terminated = _stack(rollouts, "terminated")
    T, N = terminated.shape
    ended = terminated | _stack(rollouts, "truncated")

    # One embedding (the CNN, for images) and one critic pass over every observation and the bootstrap ones.
    batch = _observation_batch(_stack(rollouts, "observations"), _stack(rollouts, "bootstrap_observations", 0), device)
    embedded = model.embed(batch)
    all_values = model.value_of(embedded)
    values = all_values[: T * N].reshape(T, N)
    values_np = all_values.detach().cpu().numpy()
    next_values = np.concatenate([values_np[N : T * N], values_np[T * N :]]).reshape(T, N)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is caught where the step is taken
        advantages_np = gae_advantages(
            _stack(rollouts, "rewards"),
            values_np[: T * N].reshape(T, N),
            next_values,
            terminated,
            ended,
            config.gamma,
            config.gae_lambda,
        )
    advantages = torch.as_tensor(advantages_np, device=device)
    returns = advantages + values.detach()
    valid_np = _stack(rollouts, "valid")
    valid = torch.as_tensor(valid_np, device=device).float()
    actions = torch.as_tensor(_stack(rollouts, "actions"), device=device)
    count = valid.sum().clamp(min=1.0)
    if config.normalize_advantage:
        mean = (advantages * valid).sum() / count
        std = (((advantages - mean) ** 2 * valid).sum() / count).sqrt()
        advantages = (advantages - mean) / (std + 1e-8)

    log_probs, entropy = model.log_prob_entropy_of(embedded[: T * N], actions.reshape(T * N, *actions.shape[2:]))
    log_probs, entropy = log_probs.reshape(T, N), entropy.reshape(T, N)
    # Data from an older policy (A3C's trajectory transport) is reweighted by the truncated importance ratio
    # min(1, pi/mu) of IMPALA's policy-gradient term (Espeholt et al. 2018); on-policy it is exactly 1.
    behaviour = torch.as_tensor(_stack(rollouts, "log_probs"), device=device)
    importance = torch.exp(log_probs.detach() - behaviour).clamp(max=1.0)
    policy_loss = -(importance * advantages * log_probs * valid).sum() / count
    value_loss = ((returns - values) ** 2 * valid).sum() / count
    mean_entropy = (entropy * valid).sum() / count
    loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * mean_entropy
    return LossTerms(
        loss=loss,
        policy_loss=policy_loss.item(),
        value_loss=value_loss.item(),
        entropy=mean_entropy.item(),
        num_samples=T * N,
        # from the host arrays already at hand: no second copy back from the device
        explained_variance=explained_variance(values_np[: T * N], advantages_np.reshape(-1) + values_np[: T * N],
                                              valid_np),
    )


def explained_variance(values: np.ndarray, returns: np.ndarray, valid: np.ndarray) -> float:
    """1 - Var(returns - values) / Var(returns) over the valid steps: 1 when the critic predicts the returns,
    0 when it does no better than their mean, negative when worse; NaN when the returns do not vary."""
    values, returns = values.reshape(-1)[valid.reshape(-1)], returns.reshape(-1)[valid.reshape(-1)]
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing batch gives NaN; its step is refused
        variance = float(np.var(returns)) if returns.size else 0.0
        explained = 1.0 - float(np.var(returns - values)) / variance if variance > 0 else float("nan")
    return explained
