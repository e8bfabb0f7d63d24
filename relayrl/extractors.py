"""Features extractors: what turns an observation into the vector the policy and value layers read.

An observation is first preprocessed (``preprocess``, SB3's preprocess_obs): images to float, channels first,
uint8 scaled by 1/255; vectors flattened to float; Discrete and MultiDiscrete values one-hot. Then one
extractor per kind (SB3's common/torch_layers.py): vectors pass as they are; images go through a CNN chosen by
``--cnn`` (auto: the Nature CNN from 36x36 up, MinAtar's small one below); a Dict's keys each through their own
and concatenated (CombinedExtractor). A user's own extractor (``pkg.module:Class``) takes the preprocessed
observation space and keyword arguments and must say its ``features_dim``, as SB3's BaseFeaturesExtractor does.
Every extractor has ``features_dim``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from relayrl.spaces import IMAGE, ONE_HOT, VECTOR, channels_last, flat_dim, image_chw, observation_kind, parts

NATURE_MIN_SIZE = 36  # the Nature CNN's 8x8/4, 4x4/2 and 3x3/1 convolutions need at least 36x36


def preprocess(space: gym.Space, obs: torch.Tensor) -> torch.Tensor:
    """One (non-Dict) observation batch as the extractors read it: float32, [B, C, H, W] images, [B, dim] else."""
    kind = observation_kind(space)
    if kind == IMAGE:
        x = obs.permute(0, 3, 1, 2) if channels_last(space) else obs
        return x.float() / 255.0 if space.dtype == np.uint8 else x.float()
    if kind == ONE_HOT:
        sizes = [int(space.n)] if isinstance(space, gym.spaces.Discrete) else [int(n) for n in space.nvec]
        values = obs.long().reshape(-1, len(sizes))
        return torch.cat([nn.functional.one_hot(values[:, i], n) for i, n in enumerate(sizes)], dim=1).float()
    return obs.flatten(1).float()  # flatten, not reshape(len(obs), -1): traced exports keep the batch axis free


def preprocessed_space(space: gym.Space) -> gym.Space:
    """The space of what ``preprocess`` gives (what a user's extractor is built for): channels-first float images
    in [0, 1], flat float vectors, one-hot blocks; a Dict of those."""
    subspaces = parts(space)
    if subspaces is not None:
        return gym.spaces.Dict({key: preprocessed_space(sub) for key, sub in subspaces.items()})
    kind = observation_kind(space)
    if kind == IMAGE:
        return gym.spaces.Box(0.0, 1.0, image_chw(space), np.float32)
    if kind == ONE_HOT:
        return gym.spaces.Box(0.0, 1.0, (flat_dim(space),), np.float32)
    return gym.spaces.Box(-np.inf, np.inf, (flat_dim(space),), np.float32)


def _orthogonal(net: nn.Module, gain: float = math.sqrt(2)) -> None:
    for layer in net.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(layer.weight, gain=gain)
            nn.init.zeros_(layer.bias)


class Extractor(nn.Sequential):
    """An nn.Sequential that says its output width (a Sequential, so that its weights keep plain names)."""

    features_dim: int


def _with_linear(convs: nn.Sequential, chw: tuple[int, int, int], width: int, ortho_init: bool) -> Extractor:
    """``convs`` (ending in Flatten), then a ``width``-unit ReLU layer."""
    with torch.no_grad():
        flat = convs(torch.zeros(1, *chw)).shape[1]
    net = Extractor(*convs, nn.Linear(flat, width), nn.ReLU())
    net.features_dim = width
    if ortho_init:
        _orthogonal(net)
    return net


def nature_cnn(chw: tuple[int, int, int], ortho_init: bool = True) -> Extractor:
    """Three convolutions and a 512-unit layer (Mnih et al. 2015), ReLUs between; orthogonal gain sqrt 2."""
    if min(chw[1:]) < NATURE_MIN_SIZE:
        raise ValueError(f"the Nature CNN needs images of at least 36x36, got {chw[1]}x{chw[2]}: use --cnn small")
    convs = nn.Sequential(
        nn.Conv2d(chw[0], 32, 8, stride=4), nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
        nn.Flatten(),
    )
    return _with_linear(convs, chw, 512, ortho_init)


def small_cnn(chw: tuple[int, int, int], ortho_init: bool = True) -> Extractor:
    """MinAtar's network (Young & Tian 2019): one 3x3 convolution with 16 filters, stride 1, and a 128-unit layer."""
    convs = nn.Sequential(nn.Conv2d(chw[0], 16, 3, stride=1), nn.ReLU(), nn.Flatten())
    return _with_linear(convs, chw, 128, ortho_init)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


def impala_cnn(chw: tuple[int, int, int], ortho_init: bool = True) -> Extractor:
    """IMPALA's 15-layer residual network (Espeholt et al. 2018): three stacks of a 3x3 convolution, a 3x3/2
    max-pool and two residual blocks (16, 32, 32 channels), then a 256-unit layer."""
    layers: list[nn.Module] = []
    channels = chw[0]
    for out in (16, 32, 32):
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.MaxPool2d(3, stride=2, padding=1),
                   _Residual(out), _Residual(out)]
        channels = out
    return _with_linear(nn.Sequential(*layers, nn.ReLU(), nn.Flatten()), chw, 256, ortho_init)


CNNS = {"nature": nature_cnn, "small": small_cnn, "impala": impala_cnn}


def image_extractor(space: gym.Space, cnn: str, ortho_init: bool = True) -> Extractor:
    """``cnn`` for the image ``space``; auto: the Nature CNN from 36x36 up, MinAtar's below."""
    chw = image_chw(space)
    if cnn == "auto":
        cnn = "nature" if min(chw[1:]) >= NATURE_MIN_SIZE else "small"
    if cnn not in CNNS:
        raise ValueError(f"cnn must be auto or one of {sorted(CNNS)}, got {cnn!r}")
    return CNNS[cnn](chw, ortho_init)


class FlatFeatures(nn.Module):
    """A preprocessed vector or one-hot block, as it is."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.features_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class CombinedExtractor(nn.Module):
    """Each key of a Dict observation through its own extractor, the results concatenated in key order."""

    def __init__(self, extractors: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.extractors = nn.ModuleDict(extractors)
        self.features_dim = sum(e.features_dim for e in self.extractors.values())

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([extractor(x[key]) for key, extractor in self.extractors.items()], dim=1)


def built_in_extractor(space: gym.Space, cnn: str = "auto", ortho_init: bool = True) -> nn.Module:
    subspaces = parts(space)
    if subspaces is not None:
        return CombinedExtractor({key: built_in_extractor(sub, cnn, ortho_init) for key, sub in subspaces.items()})
    if observation_kind(space) == IMAGE:
        return image_extractor(space, cnn, ortho_init)
    assert observation_kind(space) in (VECTOR, ONE_HOT)
    return FlatFeatures(flat_dim(space))


def load_class(path: str) -> type:
    """``pkg.module:Class``, imported; an ImportError or ValueError naming what is missing."""
    module, colon, name = path.partition(":")
    if not colon or not module or not name:
        raise ValueError(f"{path!r}: expected pkg.module:Class")
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"features extractor {path!r}: cannot import module {module!r} ({exc})") from None
    cls = getattr(imported, name, None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise ValueError(f"features extractor {path!r}: {module} has no torch.nn.Module class {name!r}")
    return cls


def user_extractor(path: str, space: gym.Space, kwargs: Mapping[str, Any]) -> nn.Module:
    """The user's ``pkg.module:Class(preprocessed space, **kwargs)``, checked on a sample batch: it must give
    [B, features_dim] floats (a ValueError naming the class otherwise)."""
    cls = load_class(path)
    seen = preprocessed_space(space)
    try:
        extractor = cls(seen, **kwargs)
    except TypeError as exc:
        raise ValueError(f"features extractor {path}: {exc}") from None
    width = getattr(extractor, "features_dim", None)
    if not isinstance(width, int) or width <= 0:
        raise ValueError(f"features extractor {path}: needs a positive int attribute features_dim, got {width!r}")
    sample = _sample_batch(seen, 2)
    with torch.no_grad():
        out = extractor(sample)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, width):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"features extractor {path}: gave {shape} for a batch of 2, expected (2, {width}) (its features_dim)"
        )
    return extractor


def _sample_batch(space: gym.Space, n: int) -> torch.Tensor | dict[str, torch.Tensor]:
    if isinstance(space, gym.spaces.Dict):
        return {key: _sample_batch(sub, n) for key, sub in space.spaces.items()}
    return torch.as_tensor(np.stack([space.sample() for _ in range(n)]), dtype=torch.float32)
