"""The learner's side of normalisation: it is the one owner of the running statistics.

Observation and return statistics live in the model's buffers (relayrl/model.py), so they travel with
every weights version and are saved in checkpoints. Here each batch is folded into them: the return
statistics before the update (its rewards are scaled with them, as VecNormalize does), the observation
statistics after it (the batch's loss must see the statistics its actions were chosen with). Among learner
ranks (``reduce``: a sum over them), every rank folds the one batch of all ranks' samples, so the statistics
stay the same on every rank, as one learner's on the union would be; a rank without rollouts still takes part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from relayrl.model import ActorCritic, Reduce
from relayrl.normalization import discounted_returns, scale_rewards
from relayrl.rollout import Rollout
from relayrl.spaces import Observation, map_observation


class RunningStatistics:
    def __init__(self, model: ActorCritic, gamma: float, reduce: Reduce | None = None) -> None:
        self.model, self.gamma, self.reduce = model, gamma, reduce
        self._returns: dict[int, np.ndarray] = {}  # each actor's envs' running discounted returns

    def before_update(self, sessions: Sequence[int], rollouts: Sequence[Rollout]) -> list[Rollout]:
        """The rollouts as the loss sees them: with rewards scaled when the run normalises rewards."""
        if not self.model.normalize_rewards:
            return list(rollouts)
        every = []
        for session, rollout in zip(sessions, rollouts):
            running = self._returns.get(session)
            if running is None or running.shape != rollout.rewards.shape[1:]:
                running = np.zeros(rollout.rewards.shape[1], np.float64)
            ended = rollout.terminated | rollout.truncated
            seen, self._returns[session] = discounted_returns(
                running, rollout.rewards, ended, rollout.valid, self.gamma
            )
            if self.reduce is None:
                self.model.update_return_stats(seen)
            else:
                every.append(seen)
        if self.reduce is not None:
            self.model.update_return_stats(np.concatenate(every) if every else np.zeros(0), self.reduce)
        variance = float(self.model.return_var)
        return [dataclasses.replace(r, rewards=scale_rewards(r.rewards, variance)) for r in rollouts]

    def after_update(self, rollouts: Sequence[Rollout]) -> None:
        if not self.model.normalize_observations:
            return
        seen = [map_observation(r.observations, lambda a, v=r.valid: a[v]) for r in rollouts]
        if self.reduce is None:
            for observations in seen:
                self.model.update_observation_stats(observations)
        else:
            self.model.update_observation_stats(concatenate(seen) if seen else None, self.reduce)


def concatenate(batches: Sequence[Observation]) -> Observation:
    """Batches of observations (arrays, or dicts of them) as one, along axis 0."""
    if isinstance(batches[0], Mapping):
        return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
    return np.concatenate(batches)
