"""The wire forms of what the services exchange: rollouts, episode statistics and model weights.

The one place that converts between the plain in-memory types (relayrl.rollout, the model's state) and the
protobuf messages, checking everything that arrives (tensors themselves: relayrl.codec). Decoding never
trusts the sender. torch is imported only to load weights into a model, so acting actors never load it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from relayrl import codec
from relayrl.errors import CodecError
from relayrl.rollout import Rollout, RolloutError
from relayrl.spaces import Observation, element_shape, parts, wire_dtype
from relayrl.v1 import relayrl_pb2 as pb

if TYPE_CHECKING:
    from torch import nn


def episodes_to_proto(returns: np.ndarray, lengths: np.ndarray) -> pb.EpisodeStats:
    return pb.EpisodeStats(returns=returns.tolist(), lengths=lengths.tolist())


def episodes_from_proto(message: pb.EpisodeStats) -> tuple[np.ndarray, np.ndarray]:
    returns = np.asarray(message.returns, dtype=np.float32)
    lengths = np.asarray(message.lengths, dtype=np.uint32)
    if returns.shape != lengths.shape:
        raise RolloutError(f"episodes: {returns.size} returns but {lengths.size} lengths")
    if not np.all(np.isfinite(returns)):
        raise RolloutError("episodes: non-finite return", RolloutError.NON_FINITE)
    return returns, lengths


def rollout_to_proto(rollout: Rollout, into: pb.Rollout | None = None) -> pb.Rollout:
    """The wire form of ``rollout`` (filled into ``into`` when given, e.g. an ActorMessage's field)."""
    message = pb.Rollout() if into is None else into
    message.policy_version = rollout.policy_version
    for name in ("observations", "bootstrap_observations"):
        obs = getattr(rollout, name)
        if isinstance(obs, Mapping):  # a Dict space: one tensor per key, each in its own dtype
            codec.add_named(getattr(message, name.replace("observations", "observation_parts")), obs)
        else:
            codec.fill(getattr(message, name), obs)
    for name in ("actions", "rewards", "terminated", "truncated", "valid", "log_probs"):
        codec.fill(getattr(message, name), getattr(rollout, name))
    message.episodes.returns[:] = rollout.episode_returns.tolist()
    message.episodes.lengths[:] = rollout.episode_lengths.tolist()
    return message


def _expect(
    array: np.ndarray,
    name: str,
    shape: tuple[int, ...],
    dtypes: tuple[str, ...],
    mismatch: str = RolloutError.MALFORMED,
) -> np.ndarray:
    """``array`` checked for shape and dtype (a fault of kind ``mismatch``) and, for floats, finiteness."""
    if array.shape != shape:
        raise RolloutError(f"{name}: shape {array.shape}, expected {shape}", mismatch)
    if array.dtype.name not in dtypes:
        raise RolloutError(f"{name}: dtype {array.dtype.name}, expected {' or '.join(dtypes)}", mismatch)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise RolloutError(f"{name}: contains NaN or Inf", RolloutError.NON_FINITE)
    return array


def _observations(array: pb.NDArray, named, space: gym.Space, what: str) -> Observation:
    """Decode one field of observations (its parts, for a Dict space) without checking shapes yet."""
    subspaces = parts(space)
    if subspaces is None:
        if len(named):
            raise RolloutError(f"{what}: per-key parts for a space that is not a Dict", RolloutError.SPACE_MISMATCH)
        return codec.decode(array, what)
    if array.ByteSize():
        raise RolloutError(f"{what}: one tensor for a Dict space, expected one per key", RolloutError.SPACE_MISMATCH)
    decoded = codec.decode_named(named, what)
    if list(decoded) != list(subspaces):
        raise RolloutError(f"{what}: keys {list(decoded)}, expected {list(subspaces)}", RolloutError.SPACE_MISMATCH)
    return decoded


def _check_observations(obs: Observation, space: gym.Space, leading: tuple[int, ...], what: str) -> Observation:
    """Shapes and dtypes against the space (every key of a Dict), and discrete values within their ranges."""
    subspaces = parts(space)
    if subspaces is not None:
        return {key: _check_observations(obs[key], sub, leading, f"{what}[{key}]") for key, sub in subspaces.items()}
    _expect(obs, what, (*leading, *element_shape(space)), (wire_dtype(space),), RolloutError.SPACE_MISMATCH)
    bound = None
    if isinstance(space, gym.spaces.Discrete):
        bound = int(space.n)
    elif isinstance(space, gym.spaces.MultiDiscrete):
        bound = space.nvec
    if bound is not None and obs.size and (obs.min() < 0 or np.any(obs >= bound)):
        raise RolloutError(f"{what}: values outside {space}", RolloutError.SPACE_MISMATCH)
    return obs


def _first(obs: Observation) -> np.ndarray:
    return next(iter(obs.values())) if isinstance(obs, Mapping) else obs


def _check_actions(message: pb.NDArray, action_space: gym.Space, T: int, N: int) -> np.ndarray:
    """Actions against the space: discrete values within their ranges; Gaussian samples finite (they may lie
    outside the Box: the env sees them clipped)."""
    actions = codec.decode(message, "actions")
    if isinstance(action_space, gym.spaces.Box):
        return _expect(actions, "actions", (T, N, *action_space.shape), ("float32",), RolloutError.SPACE_MISMATCH)
    shape = (T, N, *element_shape(action_space))
    _expect(actions, "actions", shape, ("int64", "int32"), RolloutError.SPACE_MISMATCH)
    if isinstance(action_space, gym.spaces.MultiBinary):
        high = 2
    elif isinstance(action_space, gym.spaces.MultiDiscrete):
        high = action_space.nvec
    else:
        high = int(action_space.n)
    if actions.size and (actions.min() < 0 or np.any(actions >= high)):
        raise RolloutError(f"actions: outside {action_space}", RolloutError.BAD_ACTION)
    return actions


def rollout_from_proto(
    message: pb.Rollout, observation_space: gym.Space, action_space: gym.Space, n_steps: int
) -> Rollout:
    """Decode and check a rollout against the run's spaces and n_steps; raise RolloutError/CodecError."""
    obs = _observations(message.observations, message.observation_parts, observation_space, "observations")
    first = _first(obs)
    if first.ndim < 2 or first.shape[0] != n_steps:
        raise RolloutError(
            f"observations: shape {first.shape}, expected [{n_steps}, N, ...]", RolloutError.SPACE_MISMATCH
        )
    T, N = first.shape[:2]
    if N == 0:
        raise RolloutError("observations: no environments", RolloutError.SPACE_MISMATCH)
    obs = _check_observations(obs, observation_space, (T, N), "observations")
    bootstrap = _observations(
        message.bootstrap_observations, message.bootstrap_observation_parts, observation_space,
        "bootstrap_observations",
    )
    returns, lengths = episodes_from_proto(message.episodes)
    return Rollout(
        observations=obs,
        actions=_check_actions(message.actions, action_space, T, N),
        rewards=_expect(codec.decode(message.rewards, "rewards"), "rewards", (T, N), ("float32",)),
        terminated=_expect(codec.decode(message.terminated, "terminated"), "terminated", (T, N), ("bool",)),
        truncated=_expect(codec.decode(message.truncated, "truncated"), "truncated", (T, N), ("bool",)),
        valid=_expect(codec.decode(message.valid, "valid"), "valid", (T, N), ("bool",)),
        log_probs=_expect(codec.decode(message.log_probs, "log_probs"), "log_probs", (T, N), ("float32",)),
        bootstrap_observations=_check_observations(bootstrap, observation_space, (N,), "bootstrap_observations"),
        policy_version=message.policy_version,
        episode_returns=returns,
        episode_lengths=lengths,
    )


def encode_weights(model: nn.Module | Mapping[str, Any], version: int, into: pb.Weights | None = None) -> pb.Weights:
    """The model's state (or a state already on the host) as a Weights message (filled into ``into`` when
    given, without copies)."""
    weights = pb.Weights() if into is None else into
    weights.version = version
    codec.add_named(weights.tensors, model.state_dict() if hasattr(model, "state_dict") else model)
    return weights


def load_weights(model: nn.Module, weights: pb.Weights) -> None:
    """Copy a Weights message into ``model``; every tensor must be present with its exact shape."""
    import torch  # here, not at the top: actors that only act never load torch
    arrays = codec.decode_named(weights.tensors, "weights")
    state = model.state_dict()
    if set(arrays) != set(state):
        raise CodecError(f"weights: names {sorted(arrays)} do not match the model's {sorted(state)}")
    with torch.no_grad():
        for name, target in state.items():
            array = arrays[name]
            if tuple(array.shape) != tuple(target.shape):
                raise CodecError(f"weights[{name}]: shape {array.shape}, model has {tuple(target.shape)}")
            target.copy_(torch.tensor(array))  # torch.tensor copies: the wire buffer is read-only
