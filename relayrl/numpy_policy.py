"""The policy half of relayrl.model.ActorCritic, evaluated with NumPy, for actors that only act.

Importing torch costs ~2.7 s of CPU per process, as long as CartPole takes to learn; an actor that
sends trajectories never needs it. This reads the very weights the learner broadcasts from ActorCritic
(``policy.{2i}.weight`` / ``.bias`` are nn.Sequential's Linear layers, ``log_std`` the Gaussian's
log-std, ``obs_mean`` / ``obs_var`` the learner's observation statistics), so ActorCritic stays the one
model definition; tests check both give the same log-probs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np

from relayrl.distributions import LOG_2PI, SDE_EPSILON
from relayrl.errors import CodecError
from relayrl.normalization import normalize_observations

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}
HALF_LOG_2PI = 0.5 * LOG_2PI


class NumpyPolicy:
    def __init__(
        self,
        action_space: gym.Space,
        hidden_sizes: Sequence[int],
        activation: str,
        seed: int,
        normalize: bool = False,
        sde_rollout_steps: int = 0,
        sde_sample_freq: int = 0,
    ) -> None:
        """``sde_rollout_steps`` > 0: the policy uses gSDE. ``act`` is called that many times per rollout (the
        run's n_steps); each env's exploration matrix is drawn at every rollout's start, and every
        ``sde_sample_freq`` steps within it when that is positive (as SB3 does)."""
        self.normalize = normalize
        self.sde_rollout_steps, self.sde_sample_freq = sde_rollout_steps, sde_sample_freq
        self.exploration: np.ndarray | None = None  # gSDE: [N, features, actions], one matrix per env
        self.calls = 0
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
            head = layers[-1][0].shape  # [features, actions]
            expected = head if self.sde_rollout_steps else head[1:]
            if self.log_std.shape != expected:
                raise CodecError(f"weights: log_std {self.log_std.shape}, expected {expected}")
        if self.normalize:
            mean, var = np.asarray(arrays["obs_mean"], np.float32), np.asarray(arrays["obs_var"], np.float32)
            if mean.shape != layers[0][0].shape[:1] or var.shape != mean.shape:
                raise CodecError(f"weights: obs_mean {mean.shape} and obs_var {var.shape} do not fit the first layer")
            self.obs_stats = (mean, var)

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sample one action per observation; returns (actions, log-probabilities)."""
        h = obs if self.obs_stats is None else normalize_observations(obs, *self.obs_stats)
        features = h
        for i, (weight, bias) in enumerate(self.layers):
            features = h
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
        if self.sde_rollout_steps:
            return self._act_sde(features, h)
        std = np.exp(self.log_std)
        noise = self.rng.standard_normal(h.shape, dtype=np.float32)
        actions = h + std * noise
        log_probs = (-0.5 * noise**2 - self.log_std - HALF_LOG_2PI).sum(axis=1)
        return actions.astype(np.float32), log_probs.astype(np.float32)

    def _act_sde(self, features: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """gSDE: noise = z(s) . theta_env, whose std per action is sqrt(z(s)^2 . sigma^2) (ActorCritic._gaussian)."""
        sigma = np.exp(self.log_std)  # [features, actions]
        step = self.calls % self.sde_rollout_steps  # this call's step within its rollout
        redraw = step == 0 or (self.sde_sample_freq > 0 and step % self.sde_sample_freq == 0)
        if redraw or self.exploration is None or len(self.exploration) != len(mean):
            self.exploration = sigma * self.rng.standard_normal((len(mean), *sigma.shape), dtype=np.float32)
        self.calls += 1
        noise = np.einsum("nf,nfa->na", features, self.exploration)
        log_std = 0.5 * np.log(features**2 @ sigma**2 + SDE_EPSILON)
        log_probs = (-0.5 * (noise / np.exp(log_std)) ** 2 - log_std - HALF_LOG_2PI).sum(axis=1)
        return (mean + noise).astype(np.float32), log_probs.astype(np.float32)
