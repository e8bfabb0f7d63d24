"""The policy half of relayrl.model.ActorCritic, evaluated with NumPy, for actors that only act.

Importing torch costs ~2.7 s of CPU per process, as long as CartPole takes to learn; an actor that
sends trajectories never needs it. This reads the very weights the learner broadcasts from ActorCritic
(``policy.{2i}.weight`` / ``.bias`` are nn.Sequential's Linear layers, ``log_std`` the Gaussian's
log-std, ``obs_mean`` / ``obs_var`` the learner's observation statistics), so ActorCritic stays the one
model definition; tests check both give the same log-probs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np

from relayrl.codec import CodecError
from relayrl.normalization import normalize_observations

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class NumpyPolicy:
    def __init__(
        self,
        action_space: gym.Space,
        hidden_sizes: Sequence[int],
        activation: str,
        seed: int,
        normalize: bool = False,
    ) -> None:
        self.normalize = normalize
        self.obs_stats: tuple[np.ndarray, np.ndarray] | None = None
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.activation = ACTIVATIONS[activation]
        self.names = [f"policy.{2 * i}" for i in range(len(hidden_sizes) + 1)]
        self.rng = np.random.default_rng(seed)
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []
        self.log_std: np.ndarray | None = None

    def load(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Take the policy's layers from a model state (other entries, e.g. the value net, are ignored)."""
        needed = [f"{n}.{p}" for n in self.names for p in ("weight", "bias")] + ([] if self.discrete else ["log_std"])
        needed += ["obs_mean", "obs_var"] if self.normalize else []
        missing = [n for n in needed if n not in arrays]
        if missing:
            raise CodecError(f"weights: missing {missing}")
        layers = []
        for name in self.names:
            weight, bias = arrays[f"{name}.weight"], arrays[f"{name}.bias"]
            if weight.ndim != 2 or bias.shape != weight.shape[:1]:
                raise CodecError(f"weights[{name}]: weight {weight.shape} and bias {bias.shape} do not form a layer")
            layers.append((np.ascontiguousarray(weight.T, np.float32), np.asarray(bias, np.float32)))
        self.layers = layers
        if not self.discrete:
            self.log_std = np.asarray(arrays["log_std"], np.float32)
        if self.normalize:
            mean, var = np.asarray(arrays["obs_mean"], np.float32), np.asarray(arrays["obs_var"], np.float32)
            if mean.shape != layers[0][0].shape[:1] or var.shape != mean.shape:
                raise CodecError(f"weights: obs_mean {mean.shape} and obs_var {var.shape} do not fit the first layer")
            self.obs_stats = (mean, var)

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sample one action per observation; returns (actions, log-probabilities)."""
        h = obs if self.obs_stats is None else normalize_observations(obs, *self.obs_stats)
        for i, (weight, bias) in enumerate(self.layers):
            h = h @ weight + bias
            if i < len(self.layers) - 1:
                h = self.activation(h)
        if self.discrete:
            shifted = h - h.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            # inverse-CDF sampling: the first action whose cumulative probability exceeds u
            cdf = np.exp(log_p).cumsum(axis=1)
            u = self.rng.random((len(h), 1), dtype=np.float32) * cdf[:, -1:]
            actions = np.minimum((cdf < u).sum(axis=1), h.shape[1] - 1)
            return actions.astype(np.int64), log_p[np.arange(len(h)), actions].astype(np.float32)
        std = np.exp(self.log_std)
        noise = self.rng.standard_normal(h.shape, dtype=np.float32)
        actions = h + std * noise
        log_probs = (-0.5 * noise**2 - self.log_std - HALF_LOG_2PI).sum(axis=1)
        return actions.astype(np.float32), log_probs.astype(np.float32)
