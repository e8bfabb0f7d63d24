"""A rollout as both services hold it in memory, and its checked conversion from and to the wire."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from relayrl import codec
from relayrl.v1 import relayrl_pb2 as pb


class RolloutError(ValueError):
    """A rollout message is inconsistent with itself or with the run's spaces."""


@dataclass
class Rollout:
    """n_steps transitions from num_envs environments, time-major [T, N, ...]."""

    observations: np.ndarray  # [T, N, *obs]
    actions: np.ndarray  # [T, N] or [T, N, *act]
    rewards: np.ndarray  # [T, N]
    terminated: np.ndarray  # [T, N] bool
    truncated: np.ndarray  # [T, N] bool
    valid: np.ndarray  # [T, N] bool; False on next-step autoreset transitions
    log_probs: np.ndarray  # [T, N]
    bootstrap_observations: np.ndarray  # [N, *obs]
    policy_version: int
    episode_returns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    episode_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))

    @property
    def num_steps(self) -> int:
        """Real environment transitions: Gymnasium's next-step autoreset steps (``valid`` False) only reset."""
        return int(self.valid.sum())


def episodes_to_proto(returns: np.ndarray, lengths: np.ndarray) -> pb.EpisodeStats:
    return pb.EpisodeStats(returns=returns.tolist(), lengths=lengths.tolist())


def episodes_from_proto(message: pb.EpisodeStats) -> tuple[np.ndarray, np.ndarray]:
    returns = np.asarray(message.returns, dtype=np.float32)
    lengths = np.asarray(message.lengths, dtype=np.uint32)
    if returns.shape != lengths.shape:
        raise RolloutError(f"episodes: {returns.size} returns but {lengths.size} lengths")
    if not np.all(np.isfinite(returns)):
        raise RolloutError("episodes: non-finite return")
    return returns, lengths


def to_proto(rollout: Rollout, into: pb.Rollout | None = None) -> pb.Rollout:
    """The wire form of ``rollout`` (filled into ``into`` when given, e.g. an ActorMessage's field)."""
    message = pb.Rollout() if into is None else into
    message.policy_version = rollout.policy_version
    for name in ("observations", "actions", "rewards", "terminated", "truncated", "valid", "log_probs",
                 "bootstrap_observations"):
        codec.fill(getattr(message, name), getattr(rollout, name))
    message.episodes.returns[:] = rollout.episode_returns.tolist()
    message.episodes.lengths[:] = rollout.episode_lengths.tolist()
    return message


def _expect(array: np.ndarray, name: str, shape: tuple[int, ...], dtypes: tuple[str, ...]) -> np.ndarray:
    if array.shape != shape:
        raise RolloutError(f"{name}: shape {array.shape}, expected {shape}")
    if array.dtype.name not in dtypes:
        raise RolloutError(f"{name}: dtype {array.dtype.name}, expected {' or '.join(dtypes)}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise RolloutError(f"{name}: contains NaN or Inf")
    return array


def from_proto(message: pb.Rollout, observation_space: gym.Space, action_space: gym.Space, n_steps: int) -> Rollout:
    """Decode and check a rollout against the run's spaces and n_steps; raise RolloutError/CodecError."""
    obs = codec.decode(message.observations, "observations")
    if obs.ndim < 2 or obs.shape[0] != n_steps:
        raise RolloutError(f"observations: shape {obs.shape}, expected [{n_steps}, N, ...]")
    T, N = obs.shape[:2]
    if N == 0:
        raise RolloutError("observations: no environments")
    obs_shape = tuple(observation_space.shape)
    _expect(obs, "observations", (T, N, *obs_shape), ("float32",))
    if isinstance(action_space, gym.spaces.Discrete):
        actions = _expect(codec.decode(message.actions, "actions"), "actions", (T, N), ("int64", "int32"))
        if actions.size and (actions.min() < 0 or actions.max() >= action_space.n):
            raise RolloutError(f"actions: outside Discrete({action_space.n})")
    else:
        # Raw Gaussian samples may lie outside the Box (the env sees them clipped); they must be finite.
        actions = _expect(
            codec.decode(message.actions, "actions"), "actions", (T, N, *action_space.shape), ("float32",)
        )
    returns, lengths = episodes_from_proto(message.episodes)
    return Rollout(
        observations=obs,
        actions=actions,
        rewards=_expect(codec.decode(message.rewards, "rewards"), "rewards", (T, N), ("float32",)),
        terminated=_expect(codec.decode(message.terminated, "terminated"), "terminated", (T, N), ("bool",)),
        truncated=_expect(codec.decode(message.truncated, "truncated"), "truncated", (T, N), ("bool",)),
        valid=_expect(codec.decode(message.valid, "valid"), "valid", (T, N), ("bool",)),
        log_probs=_expect(codec.decode(message.log_probs, "log_probs"), "log_probs", (T, N), ("float32",)),
        bootstrap_observations=_expect(
            codec.decode(message.bootstrap_observations, "bootstrap_observations"),
            "bootstrap_observations",
            (N, *obs_shape),
            ("float32",),
        ),
        policy_version=message.policy_version,
        episode_returns=returns,
        episode_lengths=lengths,
    )
