"""A rollout as both services hold it in memory (its wire form: relayrl.wire)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from relayrl.spaces import Observation


class RolloutError(ValueError):
    """A rollout message is inconsistent with itself or with the run's spaces; ``kind`` says which way."""

    MALFORMED = "malformed"  # its own arrays disagree (lengths against observations, dtypes), or its episode stats do
    SPACE_MISMATCH = "space_mismatch"  # observations or actions against the run's spaces or n_steps
    NON_FINITE = "non_finite"  # NaN or Inf
    BAD_ACTION = "bad_action"  # an action outside a Discrete action space

    def __init__(self, message: str, kind: str = MALFORMED) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Rollout:
    """n_steps transitions from num_envs environments, time-major [T, N, ...]."""

    observations: Observation  # [T, N, *obs], or one such array per key of a Dict observation space
    actions: np.ndarray  # [T, N] or [T, N, *act]
    rewards: np.ndarray  # [T, N]
    terminated: np.ndarray  # [T, N] bool
    truncated: np.ndarray  # [T, N] bool
    valid: np.ndarray  # [T, N] bool; False on next-step autoreset transitions and FIRE pressed for the agent
    log_probs: np.ndarray  # [T, N]
    bootstrap_observations: Observation  # [N, *obs] (per key, for Dict spaces)
    policy_version: int
    episode_returns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    episode_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))

    @property
    def num_steps(self) -> int:
        """The agent's environment transitions: not Gymnasium's next-step autoreset steps (they only reset), nor
        FIRE pressed for it after a lost life (``valid`` False on both)."""
        return int(self.valid.sum())
