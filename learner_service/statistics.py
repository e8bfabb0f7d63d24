"""The learner's side of normalisation: it is the one owner of the running statistics.

Observation and return statistics live in the model's buffers (relayrl/model.py), so they travel with
every weights version and are saved in checkpoints. Here each batch is folded into them: the return
statistics before the update (its rewards are scaled with them, as VecNormalize does), the observation
statistics after it (the batch's loss must see the statistics its actions were chosen with).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from relayrl.model import ActorCritic
from relayrl.normalization import discounted_returns, scale_rewards
from relayrl.rollout import Rollout
from relayrl.spaces import map_observation


class RunningStatistics:
    def __init__(self, model: ActorCritic, gamma: float) -> None:
        self.model, self.gamma = model, gamma
        self._returns: dict[int, np.ndarray] = {}  # each actor's envs' running discounted returns

    def before_update(self, sessions: Sequence[int], rollouts: Sequence[Rollout]) -> list[Rollout]:
        """The rollouts as the loss sees them: with rewards scaled when the run normalises rewards."""
        if not self.model.normalize_rewards:
            return list(rollouts)
        for session, rollout in zip(sessions, rollouts):
            running = self._returns.get(session)
            if running is None or running.shape != rollout.rewards.shape[1:]:
                running = np.zeros(rollout.rewards.shape[1], np.float64)
            ended = rollout.terminated | rollout.truncated
            seen, self._returns[session] = discounted_returns(
                running, rollout.rewards, ended, rollout.valid, self.gamma
            )
            self.model.update_return_stats(seen)
        variance = float(self.model.return_var)
        return [dataclasses.replace(r, rewards=scale_rewards(r.rewards, variance)) for r in rollouts]

    def after_update(self, rollouts: Sequence[Rollout]) -> None:
        if self.model.normalize_observations:
            for rollout in rollouts:
                valid = rollout.valid
                self.model.update_observation_stats(map_observation(rollout.observations, lambda a, v=valid: a[v]))
