"""The policy half of relayrl.model.ActorCritic, evaluated with NumPy, for actors that only act.

Importing torch costs ~2.7 s of CPU per process, as long as CartPole takes to learn; an actor that
sends trajectories never needs it. This reads the very weights the learner broadcasts from ActorCritic
(``shared.{2i}`` and ``policy.{2i}`` ``.weight`` / ``.bias`` are nn.Sequential's Linear layers, ``log_std`` the
Gaussian's log-std, ``obs_mean`` / ``obs_var`` (``obs_mean_KEY``... for a Dict's keys) the learner's observation
statistics), so ActorCritic stays the one model definition; tests check both give the same log-probs. It serves
every observation an MLP reads (vectors of any shape flattened, Discrete and MultiDiscrete one-hot, a Dict of
those) and every action head; images and user extractors need the torch model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np

from relayrl.architecture import parse_net_arch
from relayrl.distributions import LOG_2PI, SDE_EPSILON
from relayrl.errors import CodecError
from relayrl.normalization import normalize_observations, statistic_name
from relayrl.spaces import (
    BERNOULLI,
    CATEGORICAL,
    GAUSSIAN,
    ONE_HOT,
    Observation,
    action_kind,
    action_sizes,
    element_shape,
    needs_torch,
    observation_kind,
    one_hot,
    parts,
    vector_keys,
)

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}
HALF_LOG_2PI = 0.5 * LOG_2PI


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log(1 / (1 + exp(-x))), without overflow."""
    return -np.logaddexp(0.0, -x)


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
        observation_space: gym.Space | None = None,
        net_arch: str = "",
    ) -> None:
        """``observation_space`` None: flat float vectors. ``sde_rollout_steps`` > 0: the policy uses gSDE. ``act``
        is called that many times per rollout (the run's n_steps); each env's exploration matrix is drawn at every
        rollout's start, and every ``sde_sample_freq`` steps within it when that is positive (as SB3 does)."""
        self.observation_space = observation_space
        if observation_space is not None and needs_torch(observation_space):
            raise ValueError("the NumPy policy reads no images: act with the torch model")
        if observation_space is None:
            self.normalized_keys: list[str | None] = [None] if normalize else []
        else:
            self.normalized_keys = vector_keys(observation_space) if normalize else []
        # what each part of an observation is, worked out once: the keys of a Dict, the parts read one-hot
        subspaces = parts(observation_space) if observation_space is not None else None
        self.dict_keys = None if subspaces is None else list(subspaces)
        self.one_hot_spaces = {key: sub for key, sub in (subspaces or {None: observation_space}).items()
                               if sub is not None and observation_kind(sub) == ONE_HOT}
        flat = observation_space is None or (isinstance(observation_space, gym.spaces.Box)
                                             and len(observation_space.shape) == 1)
        self.plain = flat and not self.one_hot_spaces and not self.normalized_keys  # read as they are
        self.sde_rollout_steps, self.sde_sample_freq = sde_rollout_steps, sde_sample_freq
        self.exploration: np.ndarray | None = None  # gSDE: [N, features, actions], one matrix per env
        self.calls = 0
        self.obs_stats: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}
        self.kind = action_kind(action_space)
        self.discrete = self.kind != GAUSSIAN
        self.sizes = action_sizes(action_space)
        self.action_shape = element_shape(action_space)
        self.activation = ACTIVATIONS[activation]
        arch = parse_net_arch(net_arch, hidden_sizes)
        self.names = [f"shared.{2 * i}" for i in range(len(arch.shared))]
        self.names += [f"policy.{2 * i}" for i in range(len(arch.pi) + 1)]
        self.rng = np.random.default_rng(seed)
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []
        self.log_std: np.ndarray | None = None

    def load(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Take the policy's layers from a model state (other entries, e.g. the value net, are ignored)."""
        stats = [statistic_name(s, key) for key in self.normalized_keys for s in ("mean", "var")]
        needed = [f"{n}.{p}" for n in self.names for p in ("weight", "bias")] + ([] if self.discrete else ["log_std"])
        missing = [n for n in needed + stats if n not in arrays]
        if missing:
            raise CodecError(f"weights: missing {missing}")
        layers = []
        for name in self.names:
            weight, bias = arrays[f"{name}.weight"], arrays[f"{name}.bias"]
            if weight.ndim != 2 or bias.shape != weight.shape[:1]:
                raise CodecError(f"weights[{name}]: weight {weight.shape} and bias {bias.shape} do not form a layer")
            if layers and layers[-1][0].shape[1] != weight.shape[1]:
                raise CodecError(f"weights[{name}]: {weight.shape[1]} inputs after a layer of {layers[-1][0].shape[1]}")
            layers.append((np.ascontiguousarray(weight.T, np.float32), np.asarray(bias, np.float32)))
        self.layers = layers
        if not self.discrete:
            self.log_std = np.asarray(arrays["log_std"], np.float32)
            head = layers[-1][0].shape  # [features, actions]
            expected = head if self.sde_rollout_steps else head[1:]
            if self.log_std.shape != expected:
                raise CodecError(f"weights: log_std {self.log_std.shape}, expected {expected}")
        obs_stats = {}
        for key in self.normalized_keys:
            mean = np.asarray(arrays[statistic_name("mean", key)], np.float32)
            var = np.asarray(arrays[statistic_name("var", key)], np.float32)
            if mean.ndim != 1 or var.shape != mean.shape:
                raise CodecError(f"weights: {statistic_name('mean', key)} {mean.shape} and var {var.shape} differ")
            obs_stats[key] = (mean, var)
        if self.observation_space is None and None in obs_stats and obs_stats[None][0].shape != layers[0][0].shape[:1]:
            raise CodecError(f"weights: obs_mean {obs_stats[None][0].shape} does not fit the first layer")
        self.obs_stats = obs_stats

    def features(self, obs: Observation) -> np.ndarray:
        """Observations as the first layer reads them: flattened, one-hot, normalised; a Dict's keys concatenated."""
        if self.plain:
            return obs  # float32 vectors as the collector holds them: nothing to do
        if self.dict_keys is None:
            return self._part(None, obs)
        return np.concatenate([self._part(key, obs[key]) for key in self.dict_keys], axis=1)

    def _part(self, key: str | None, obs: np.ndarray) -> np.ndarray:
        space = self.one_hot_spaces.get(key)
        if space is not None:
            return one_hot(obs, space)
        x = np.asarray(obs).reshape(len(obs), -1)
        stats = self.obs_stats.get(key)
        if stats is not None:
            return normalize_observations(x, *stats)
        return x if x.dtype == np.float32 else x.astype(np.float32)

    def act(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """Sample one action per observation; returns (actions, log-probabilities)."""
        h = self.features(obs)
        features = h
        for i, (weight, bias) in enumerate(self.layers):
            features = h
            h = h @ weight + bias
            if i < len(self.layers) - 1:
                h = self.activation(h)
        if self.kind == BERNOULLI:
            return self._act_bernoulli(h)
        if self.discrete:
            return self._act_categorical(h)
        if self.sde_rollout_steps:
            return self._act_sde(features, h)
        std = np.exp(self.log_std)
        noise = self.rng.standard_normal(h.shape, dtype=np.float32)
        actions = h + std * noise
        log_probs = (-0.5 * noise**2 - self.log_std - HALF_LOG_2PI).sum(axis=1)
        return actions.astype(np.float32), log_probs.astype(np.float32)

    def _act_categorical(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One categorical per block of logits (one block for Discrete), log-probabilities summed."""
        picks, log_probs = [], []
        offset = 0
        for size in self.sizes:
            block = logits[:, offset : offset + size]
            offset += size
            shifted = block - block.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            # inverse-CDF sampling: the first action whose cumulative probability exceeds u
            cdf = np.exp(log_p).cumsum(axis=1)
            u = self.rng.random((len(block), 1), dtype=np.float32) * cdf[:, -1:]
            actions = np.minimum((cdf < u).sum(axis=1), size - 1)
            picks.append(actions)
            log_probs.append(log_p[np.arange(len(block)), actions])
        if self.kind == CATEGORICAL:
            return picks[0].astype(np.int64), log_probs[0].astype(np.float32)
        return np.stack(picks, axis=1).astype(np.int64), np.sum(log_probs, axis=0).astype(np.float32)

    def _act_bernoulli(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A Bernoulli per bit, P(1) = sigmoid(logit); the action's log-probability is the bits' sum."""
        u = self.rng.random(logits.shape, dtype=np.float32)
        bits = u < 1.0 / (1.0 + np.exp(-logits))
        log_probs = np.where(bits, log_sigmoid(logits), log_sigmoid(-logits)).sum(axis=1)
        return bits.astype(np.int64).reshape(len(bits), *self.action_shape), log_probs.astype(np.float32)

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
