"""Tensors on the wire: NumPy arrays <-> NDArray messages, named tensors, and spaces.

Decoding never unpickles and never trusts the sender: the dtype must be on the allow-list and the
byte count must equal prod(shape) * itemsize. Decoded arrays are read-only views of the message bytes
(no copy). This module does not import torch (actors that only act never load it); torch tensors are
accepted wherever arrays are.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from relayrl.errors import CodecError
from relayrl.spaces import wire_dtype
from relayrl.v1 import relayrl_pb2 as pb

# The dtypes that may cross the wire, by their NumPy names; always little-endian.
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in ("float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")
}
MAX_DIMS = 8
# Box spaces' element dtypes: vectors travel as float32 (float64 envs are narrowed), images as uint8 or bool.
BOX_DTYPES = ("float32", "uint8", "bool")
MAX_SPACE_SIZE = 1 << 16  # dimensions of a MultiDiscrete, bits of a MultiBinary: far beyond any env's
__all__ = ["CodecError"]  # re-exported: callers catch codec.CodecError


def fill(target: pb.NDArray, array: Any) -> pb.NDArray:
    """Encode a NumPy array or a torch tensor into ``target``, in place.

    Filling the final message's own fields matters for large tensors: every nesting of a finished
    submessage into another (``pb.Outer(inner=msg)``) copies it whole.
    """
    if hasattr(array, "detach"):  # a torch tensor
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    dtype = DTYPES.get(array.dtype.name)
    if dtype is None:
        raise CodecError(f"dtype {array.dtype} cannot be sent")
    target.dtype = array.dtype.name
    target.shape[:] = array.shape
    target.data = np.ascontiguousarray(array, dtype=dtype).tobytes()
    return target


def encode(array: Any) -> pb.NDArray:
    return fill(pb.NDArray(), array)


def decode(message: pb.NDArray, what: str = "tensor") -> np.ndarray:
    dtype = DTYPES.get(message.dtype)
    if dtype is None:
        raise CodecError(f"{what}: unknown dtype {message.dtype!r}")
    shape = tuple(message.shape)
    if len(shape) > MAX_DIMS or any(d < 0 for d in shape):
        raise CodecError(f"{what}: invalid shape {shape}")
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow on hostile shapes
    if len(message.data) != expected:
        raise CodecError(
            f"{what}: {len(message.data)} bytes for dtype {message.dtype} and shape {shape} (expected {expected})"
        )
    return np.frombuffer(message.data, dtype=dtype).reshape(shape)


def add_named(field: Any, tensors: Mapping[str, Any]) -> None:
    """Append ``tensors`` to a repeated NamedTensor field, in place."""
    for name, value in tensors.items():
        item = field.add()
        item.name = name
        fill(item.tensor, value)


def encode_named(tensors: Mapping[str, Any]) -> list[pb.NamedTensor]:
    return [pb.NamedTensor(name=name, tensor=encode(value)) for name, value in tensors.items()]


def decode_named(messages: Iterable[pb.NamedTensor], what: str = "tensors") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for item in messages:
        if item.name in out:
            raise CodecError(f"{what}: {item.name!r} appears twice")
        out[item.name] = decode(item.tensor, f"{what}[{item.name}]")
    return out


def encode_space(space: gym.Space) -> pb.Space:
    if isinstance(space, gym.spaces.Discrete):
        if int(space.start) != 0:
            raise CodecError("Discrete spaces must start at 0")
        return pb.Space(kind=pb.Space.DISCRETE, n=int(space.n))
    if isinstance(space, gym.spaces.Box):
        return pb.Space(
            kind=pb.Space.BOX,
            shape=space.shape,
            low=encode(space.low.astype(np.float32)),
            high=encode(space.high.astype(np.float32)),
            dtype=wire_dtype(space),
        )
    if isinstance(space, gym.spaces.MultiDiscrete):
        if space.nvec.ndim != 1 or np.any(space.start != 0):
            raise CodecError(f"MultiDiscrete spaces must be 1-D and start at 0, got {space}")
        return pb.Space(kind=pb.Space.MULTI_DISCRETE, nvec=space.nvec.tolist())
    if isinstance(space, gym.spaces.MultiBinary):
        return pb.Space(kind=pb.Space.MULTI_BINARY, shape=space.shape)
    if isinstance(space, gym.spaces.Dict):
        message = pb.Space(kind=pb.Space.DICT)
        for key, sub in space.spaces.items():
            if isinstance(sub, (gym.spaces.Dict, gym.spaces.Tuple)):
                raise CodecError(f"Dict space: {key!r} is a nested {type(sub).__name__}")
            message.spaces.add(name=key, space=encode_space(sub))
        return message
    raise CodecError(f"unsupported space {space}: RelayRL handles Discrete, Box, MultiDiscrete, MultiBinary and Dict")


def decode_space(message: pb.Space, nested: bool = False) -> gym.Space:
    if message.kind == pb.Space.DISCRETE:
        if message.n <= 0:
            raise CodecError(f"Discrete space with n={message.n}")
        return gym.spaces.Discrete(int(message.n))
    if message.kind == pb.Space.BOX:
        low, high = decode(message.low, "space.low"), decode(message.high, "space.high")
        shape = tuple(message.shape)
        if low.shape != shape or high.shape != shape:
            raise CodecError(f"Box bounds of shape {low.shape}/{high.shape} for shape {shape}")
        dtype = message.dtype or "float32"
        if dtype not in BOX_DTYPES:
            raise CodecError(f"Box dtype {dtype!r}: expected one of {', '.join(BOX_DTYPES)}")
        return gym.spaces.Box(low=low, high=high, shape=shape, dtype=np.dtype(dtype))
    if message.kind == pb.Space.MULTI_DISCRETE:
        if not message.nvec or min(message.nvec) <= 0 or len(message.nvec) > MAX_SPACE_SIZE:
            raise CodecError(f"MultiDiscrete space with nvec={list(message.nvec)[:8]}")
        return gym.spaces.MultiDiscrete(np.asarray(message.nvec, np.int64))
    if message.kind == pb.Space.MULTI_BINARY:
        shape = tuple(message.shape)
        if not shape or min(shape) <= 0 or len(shape) > MAX_DIMS or math.prod(shape) > MAX_SPACE_SIZE:
            raise CodecError(f"MultiBinary space of shape {shape}")
        return gym.spaces.MultiBinary(list(shape))
    if message.kind == pb.Space.DICT and not nested:
        names = [item.name for item in message.spaces]
        if not names or len(set(names)) != len(names) or not all(names):
            raise CodecError(f"Dict space with keys {names[:8]}: needs distinct, non-empty keys")
        # an OrderedDict keeps the sender's key order (a plain dict would be sorted by gym.spaces.Dict)
        subspaces = OrderedDict((item.name, decode_space(item.space, nested=True)) for item in message.spaces)
        return gym.spaces.Dict(subspaces)
    raise CodecError(f"unknown space kind {message.kind}" + (" (nested)" if nested else ""))


def same_space(a: gym.Space, b: gym.Space) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, gym.spaces.Discrete):
        return int(a.n) == int(b.n)
    if isinstance(a, gym.spaces.Box):
        return (
            a.shape == b.shape
            and wire_dtype(a) == wire_dtype(b)
            and np.array_equal(a.low.astype(np.float32), b.low.astype(np.float32))
            and np.array_equal(a.high.astype(np.float32), b.high.astype(np.float32))
        )
    if isinstance(a, gym.spaces.MultiDiscrete):
        return np.array_equal(a.nvec, b.nvec)
    if isinstance(a, gym.spaces.MultiBinary):
        return a.shape == b.shape
    if isinstance(a, gym.spaces.Dict):
        return list(a.spaces) == list(b.spaces) and all(same_space(a[k], b[k]) for k in a.spaces)
    return False
