"""The advantage actor-critic loss (Mnih et al. 2016, eq. in section 4) over a batch of rollouts.

loss = policy_loss + value_coef * value_loss - entropy_coef * entropy, with
  policy_loss = -mean(rho_t * A_t * log pi(a_t | s_t)),  value_loss = mean((R_t - V(s_t))^2),
  rho_t = min(1, pi(a_t | s_t) / mu(a_t | s_t)) for data from an older behaviour policy mu, else 1,
averaged over valid transitions only. A_t and R_t come from returns.py and are constants (no gradient).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from relayrl.model import ActorCritic
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
    # [policy loss, value loss, entropy, explained variance] on the loss's device: read on the host through
    # the properties below, all in one copy (``to_host``), so that the diagnostics cost one synchronisation
    diagnostics: torch.Tensor
    num_samples: int
    _host: list[float] | None = field(default=None, repr=False)

    def to_host(self, *extra: torch.Tensor) -> list[float]:
        """Copy the diagnostics and ``extra`` scalar tensors (the learner's gradient norm) to the host in one
        transfer, the update's one synchronisation; returns the extras' values."""
        values = torch.cat([self.diagnostics, *(e.detach().reshape(1).to(self.diagnostics) for e in extra)])
        host = values.tolist()
        self._host = host[:4]
        return host[4:]

    def _read(self, index: int) -> float:
        if self._host is None:
            self.to_host()
        return self._host[index]

    @property
    def policy_loss(self) -> float:
        return self._read(0)

    @property
    def value_loss(self) -> float:
        return self._read(1)

    @property
    def entropy(self) -> float:
        return self._read(2)

    @property
    def explained_variance(self) -> float:
        """1 - Var(R - V) / Var(R) over valid steps (SB3's diagnostic)."""
        return self._read(3)


# The rollout fields the loss reads, and the axis rollouts are batched along (their environments side by side).
FIELDS: dict[str, int] = {"observations": 1, "bootstrap_observations": 0, "actions": 1, "rewards": 1,
                          "terminated": 1, "truncated": 1, "valid": 1, "log_probs": 1}
# How the fields of rollouts reach the device: gather (below), or the learner's own (pinned, one copy).
Gather = Callable[[Sequence[Rollout], Mapping[str, int], torch.device], dict[str, Any]]


def _concatenate(arrays: Sequence[np.ndarray], axis: int) -> np.ndarray:
    if len(arrays) > 1:
        return np.concatenate(arrays, axis=axis)
    return arrays[0] if arrays[0].flags.writeable else arrays[0].copy()


def _stack(rollouts: Sequence[Rollout], name: str, axis: int) -> Observation:
    """Concatenate one field of several rollouts along the environment axis (writable, for torch); a Dict
    observation key by key."""
    values = [getattr(r, name) for r in rollouts]
    if isinstance(values[0], Mapping):
        return {key: _concatenate([v[key] for v in values], axis) for key in values[0]}
    return _concatenate(values, axis)


def gather(rollouts: Sequence[Rollout], fields: Mapping[str, int], device: torch.device) -> dict[str, Any]:
    """Each field stacked on the host and made a tensor on ``device`` (no copy on the CPU where writable); a
    Dict observation as one tensor per key."""
    def tensor(value: np.ndarray | Mapping[str, np.ndarray]) -> Any:
        if isinstance(value, Mapping):
            return {key: torch.as_tensor(array, device=device) for key, array in value.items()}
        return torch.as_tensor(value, device=device)

    return {name: tensor(_stack(rollouts, name, axis)) for name, axis in fields.items()}


def _with_bootstrap(obs: Any, bootstrap: Any) -> Any:
    """[T, N, ...] observations and the [N, ...] bootstrap ones as one [T*N + N, ...] batch (per key of a Dict)."""
    if isinstance(obs, Mapping):
        return {key: _with_bootstrap(obs[key], bootstrap[key]) for key in obs}
    return torch.cat([obs.reshape(-1, *obs.shape[2:]), bootstrap])


def actor_critic_loss(
    model: ActorCritic,
    rollouts: Sequence[Rollout],
    config: LossConfig,
    device: torch.device | None = None,
    gather: Gather = gather,
) -> LossTerms:
    """The loss over rollouts that share n_steps (their environments are batched side by side). All of it runs
    on the model's device, with no synchronisation with the host (the diagnostics are read later, LossTerms)."""
    device = device or next(model.parameters()).device
    batch = gather(rollouts, FIELDS, device)
    terminated = batch["terminated"]
    T, N = terminated.shape
    ended = terminated | batch["truncated"]

    # One embedding (the CNN, for images) and one critic pass over every observation and the bootstrap ones.
    embedded = model.embed(_with_bootstrap(batch["observations"], batch["bootstrap_observations"]))
    all_values = model.value_of(embedded)
    values = all_values[: T * N].reshape(T, N)
    constant = all_values.detach()
    next_values = torch.cat([constant[N : T * N], constant[T * N :]]).reshape(T, N)
    advantages = gae_advantages(
        batch["rewards"], values.detach(), next_values, terminated, ended, config.gamma, config.gae_lambda
    )
    returns = advantages + values.detach()
    valid = batch["valid"].float()
    actions = batch["actions"]
    count = valid.sum().clamp(min=1.0)
    if config.normalize_advantage:
        mean = (advantages * valid).sum() / count
        std = (((advantages - mean) ** 2 * valid).sum() / count).sqrt()
        advantages = (advantages - mean) / (std + 1e-8)

    log_probs, entropy = model.log_prob_entropy_of(embedded[: T * N], actions.reshape(T * N, *actions.shape[2:]))
    log_probs, entropy = log_probs.reshape(T, N), entropy.reshape(T, N)
    # Data from an older policy (A3C's trajectory transport) is reweighted by the truncated importance ratio
    # min(1, pi/mu) of IMPALA's policy-gradient term (Espeholt et al. 2018); on-policy it is exactly 1.
    importance = torch.exp(log_probs.detach() - batch["log_probs"]).clamp(max=1.0)
    policy_loss = -(importance * advantages * log_probs * valid).sum() / count
    value_loss = ((returns - values) ** 2 * valid).sum() / count
    mean_entropy = (entropy * valid).sum() / count
    loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * mean_entropy
    diagnostics = torch.stack(
        [policy_loss, value_loss, mean_entropy, explained_variance(values.detach(), returns, valid).to(loss.dtype)]
    ).detach()
    return LossTerms(loss=loss, diagnostics=diagnostics, num_samples=T * N)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1 - Var(returns - values) / Var(returns) over the valid steps: 1 when the critic predicts the returns,
    0 when it does no better than their mean, negative when worse; NaN when the returns do not vary. A scalar
    tensor where the inputs are (masked sums, not indexing: no synchronisation)."""
    weight = valid.reshape(-1) / valid.sum()
    both = torch.stack([returns, returns - values]).reshape(2, -1)  # both variances in one pass of kernels
    mean = (both * weight).sum(-1, keepdim=True)
    variance = ((both - mean) ** 2 * weight).sum(-1)
    return torch.where(variance[0] > 0, 1.0 - variance[1] / variance[0], torch.full_like(variance[0], float("nan")))
