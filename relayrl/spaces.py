"""The one place that tells Gymnasium spaces apart: what kind each is, how it travels and how a network reads it.

Observations (SB3's conventions, common/preprocessing.py):
- an image is a 3-D Box of uint8, bool, or floats in [0, 1]; its channels are the smallest dimension, first
  (ALE's 4x84x84) or last (MinAtar's 10x10x4, most user envs). uint8 images are scaled by 1/255; channels-last
  images are transposed on the model's device, never on the wire.
- any other Box, and MultiBinary, is a vector: flattened to float32 (highway-env's 5x5 Kinematics: 25);
- Discrete and MultiDiscrete are one-hot (one block per dimension);
- a Dict holds any of these under its keys (no nesting), each key travelling as its own tensor.
Actions: Discrete (a categorical), MultiDiscrete (one categorical per dimension), MultiBinary (a Bernoulli per
dimension) and a flat Box (a diagonal Gaussian).

NumPy only (no torch): the codec, the collector and the NumPy policy use it too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import gymnasium as gym
import numpy as np

# Observations as they travel and are held: one array, or one per key of a Dict space.
Observation = np.ndarray | dict[str, np.ndarray]

IMAGE, VECTOR, ONE_HOT = "image", "vector", "one_hot"
CATEGORICAL, MULTI_CATEGORICAL, BERNOULLI, GAUSSIAN = "categorical", "multi_categorical", "bernoulli", "gaussian"


class SpaceError(ValueError):
    """A space RelayRL cannot train on; the message says which and why."""


def is_image_space(space: gym.Space) -> bool:
    """A 3-D Box of uint8, bool, or floats bounded by [0, 1]."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
        return False
    if space.dtype in (np.uint8, np.bool_):
        return True
    return bool(
        np.issubdtype(space.dtype, np.floating) and np.all(space.low >= 0.0) and np.all(space.high <= 1.0)
    )


def channels_last(space: gym.Space) -> bool:
    """An image's channels are its smallest dimension; SB3 takes them as first only where that is dimension 0."""
    return int(np.argmin(space.shape)) != 0


def image_chw(space: gym.Space) -> tuple[int, int, int]:
    """(channels, height, width) of an image space, whichever way round it comes."""
    shape = tuple(int(d) for d in space.shape)
    return (shape[2], shape[0], shape[1]) if channels_last(space) else shape


def observation_kind(space: gym.Space) -> str:
    """IMAGE, VECTOR or ONE_HOT for a space that is not a Dict; a SpaceError otherwise."""
    if is_image_space(space):
        return IMAGE
    if isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary)):
        return VECTOR
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
        if isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim != 1:
            raise SpaceError(f"MultiDiscrete observations must be 1-D, got nvec of shape {space.nvec.shape}")
        return ONE_HOT
    raise SpaceError(f"unsupported observation space {space}: RelayRL reads Box, Discrete, MultiDiscrete, "
                     "MultiBinary and a Dict of those")


def parts(space: gym.Space) -> dict[str, gym.Space] | None:
    """A Dict space's subspaces by key, in the space's own order (None for any other space); checked."""
    if not isinstance(space, gym.spaces.Dict):
        return None
    if not space.spaces:
        raise SpaceError("an empty Dict observation space")
    for key, sub in space.spaces.items():
        if not isinstance(key, str) or not key or "." in key:
            raise SpaceError(f"Dict observation keys must be non-empty strings without '.', got {key!r}")
        if isinstance(sub, (gym.spaces.Dict, gym.spaces.Tuple)):
            raise SpaceError(f"observations[{key!r}]: nested {type(sub).__name__} spaces are not supported")
        observation_kind(sub)
    return dict(space.spaces)


def check_observation_space(space: gym.Space) -> None:
    """A SpaceError naming the part RelayRL cannot read."""
    if parts(space) is None:
        observation_kind(space)


def needs_torch(space: gym.Space) -> bool:
    """Whether acting on ``space`` needs a CNN (an image, or a Dict with one): the NumPy policy reads no images."""
    return any(observation_kind(sub) == IMAGE for sub in (parts(space) or {None: space}).values())


def flat_dim(space: gym.Space) -> int:
    """Width of a vector or one-hot space once flattened: Box elements, n, sum(nvec), MultiBinary bits."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(space.nvec.sum())
    return math.prod(space.shape)


def wire_dtype(space: gym.Space) -> str:
    """The dtype one element of ``space`` travels and is held in: never widened (uint8 and bool pixels stay so),
    float vectors narrowed to float32, discrete values as int64, bits as int8."""
    if isinstance(space, gym.spaces.Box):
        return {np.dtype(np.uint8): "uint8", np.dtype(np.bool_): "bool"}.get(np.dtype(space.dtype), "float32")
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
        return "int64"
    if isinstance(space, gym.spaces.MultiBinary):
        return "int8"
    raise SpaceError(f"no wire form for {space}")


def element_shape(space: gym.Space) -> tuple[int, ...]:
    """The shape of one element of a (non-Dict) space as it travels: () for Discrete."""
    if isinstance(space, gym.spaces.Discrete):
        return ()
    if isinstance(space, gym.spaces.MultiDiscrete):
        return tuple(space.nvec.shape)
    return tuple(int(d) for d in space.shape)


def vector_keys(space: gym.Space) -> list[str | None]:
    """What observation normalisation covers: the vector Box parts (None: the whole space is one), never images
    or one-hot parts."""
    subspaces = parts(space)
    if subspaces is None:
        return [None] if _normalizable(space) else []
    return [key for key, sub in subspaces.items() if _normalizable(sub)]


def _normalizable(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and not is_image_space(space)


def select(obs: Observation, key: str | None) -> np.ndarray:
    """One part of an observation batch (key None: the observation itself)."""
    return obs if key is None else obs[key]


def map_observation(obs: Observation, fn) -> Observation:
    """``fn`` applied to the array, or to each key's array."""
    if isinstance(obs, Mapping):
        return {key: fn(value) for key, value in obs.items()}
    return fn(obs)


def empty_batch(space: gym.Space, leading: tuple[int, ...]) -> Observation:
    """Zeros for ``leading`` (e.g. [T, N]) observations of ``space`` in their wire dtypes: a buffer to fill."""
    subspaces = parts(space)
    if subspaces is not None:
        return {key: empty_batch(sub, leading) for key, sub in subspaces.items()}
    return np.zeros((*leading, *element_shape(space)), wire_dtype(space))


def as_wire(space: gym.Space, obs: Observation) -> Observation:
    """Observations from the env in their wire dtypes (float64 narrowed; uint8, bool and ints kept)."""
    subspaces = parts(space)
    if subspaces is not None:
        return {key: np.asarray(obs[key], wire_dtype(sub)) for key, sub in subspaces.items()}
    return np.asarray(obs, wire_dtype(space))


def assign(buffer: Observation, index, obs: Observation) -> None:
    """buffer[index] = obs, for each key of a Dict observation."""
    if isinstance(buffer, Mapping):
        for key, value in buffer.items():
            value[index] = obs[key]
    else:
        buffer[index] = obs


def batch_size(obs: Observation) -> int:
    first = next(iter(obs.values())) if isinstance(obs, Mapping) else obs
    return len(first)


def one_hot(values: np.ndarray, space: gym.Space) -> np.ndarray:
    """[B] Discrete or [B, D] MultiDiscrete values as float32 one-hot blocks, [B, flat_dim(space)]."""
    values = np.asarray(values, np.int64)
    sizes = [int(space.n)] if isinstance(space, gym.spaces.Discrete) else [int(n) for n in space.nvec]
    values = values.reshape(len(values), len(sizes))
    out = np.zeros((len(values), sum(sizes)), np.float32)
    offset = 0
    for i, size in enumerate(sizes):
        out[np.arange(len(values)), offset + values[:, i]] = 1.0
        offset += size
    return out


def action_kind(space: gym.Space) -> str:
    """CATEGORICAL, MULTI_CATEGORICAL, BERNOULLI or GAUSSIAN; a SpaceError for other action spaces."""
    if isinstance(space, gym.spaces.Discrete):
        return CATEGORICAL
    if isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim == 1:
        return MULTI_CATEGORICAL
    if isinstance(space, gym.spaces.MultiBinary):
        return BERNOULLI
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return GAUSSIAN
    raise SpaceError(f"actions must be Discrete, 1-D MultiDiscrete, MultiBinary or a flat Box, got {space}")


def action_sizes(space: gym.Space) -> list[int]:
    """The categories of each categorical an action is made of: [n], nvec, or [] for Bernoulli and Gaussian."""
    if isinstance(space, gym.spaces.Discrete):
        return [int(space.n)]
    if isinstance(space, gym.spaces.MultiDiscrete):
        return [int(n) for n in space.nvec]
    return []


def head_width(space: gym.Space) -> int:
    """Outputs of the policy's last layer: logits (one per category or bit) or the Gaussian's means."""
    kind = action_kind(space)
    if kind in (CATEGORICAL, MULTI_CATEGORICAL):
        return sum(action_sizes(space))
    return math.prod(space.shape)


def action_dtype(space: gym.Space) -> str:
    """Actions travel as int64 (every discrete kind) or float32 (Gaussian samples)."""
    return "float32" if action_kind(space) == GAUSSIAN else "int64"
