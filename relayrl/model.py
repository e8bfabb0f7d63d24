"""The one model definition every side uses: an actor-critic for any observation and action space RelayRL reads.

An observation is preprocessed and encoded into features (relayrl/extractors.py: vectors flattened, Discrete
values one-hot, images through a CNN, a Dict's keys each through their own and concatenated, or a user's own
extractor); then an optional ``shared`` MLP trunk, and separate policy and value MLPs, each ending in its output
layer (SB3's ``net_arch``; relayrl/architecture.py). Vector observations by default: separate 64-64 policy and
value MLPs (as SB3 and the A3C paper's feed-forward agents); a lone image: the CNN shared by a linear policy
head and a linear value head, as SB3's CnnPolicy. Orthogonal initialisation (optional). Heads: a categorical
(Discrete), one categorical per dimension (MultiDiscrete), a Bernoulli per bit (MultiBinary; relayrl/heads.py),
or a diagonal Gaussian (Box): with a state-independent log-std (initialised at ``log_std_init``), or with
generalised state-dependent exploration (``use_sde``, gSDE: Raffin et al. 2022), where the noise is a
linear function of the policy's last hidden features, eps = z(s) . theta, theta ~ N(0, sigma^2) resampled
per env every few steps, so that the action's std is sqrt(z(s)^2 . sigma^2). With
``normalize_observations`` the model holds running statistics of its vector observations (every vector key of
a Dict) as buffers and normalises them itself: the statistics then travel with the weights and live in
checkpoints, so the learner, every actor and ``relayrl eval`` see the same ones. With ``normalize_rewards``
it also holds the variance of the discounted return that rewards are scaled by (the value net predicts returns
in that scale). The distribution maths is written out by hand: it is short, and torch.distributions costs more
than the MLP at these sizes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from relayrl import heads
from relayrl.architecture import CNNS, features_kwargs, parse_net_arch
from relayrl.distributions import LOG_2PI, SDE_EPSILON
from relayrl.extractors import built_in_extractor, preprocess, user_extractor
from relayrl.normalization import CLIP, EPSILON, merge_moments, merge_sums, shifted_sums, statistic_name
from relayrl.spaces import (
    BERNOULLI,
    CATEGORICAL,
    GAUSSIAN,
    Observation,
    action_kind,
    action_sizes,
    check_observation_space,
    flat_dim,
    head_width,
    is_image_space,
    parts,
    select,
    vector_keys,
)

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}
Reduce = Callable[[np.ndarray], np.ndarray]  # an array summed over the learner ranks (learner_service/group.py)


def _fold(state: tuple[float, np.ndarray, np.ndarray], batch: np.ndarray, reduce: Reduce | None):
    """Running (count, mean, var) with ``batch`` folded in; with ``reduce``, with every rank's batch."""
    if reduce is None:
        return merge_moments(*state, batch)
    return merge_sums(*state, reduce(shifted_sums(batch, state[1])), state[1])


def as_tensors(obs: Observation, device: torch.device | str | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
    """An observation batch as torch tensors in their own dtypes (float64 narrowed to float32), one per key of a
    Dict observation."""
    def convert(array: np.ndarray) -> torch.Tensor:
        array = np.asarray(array)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        return torch.as_tensor(array, device=device)

    if isinstance(obs, Mapping):
        return {key: convert(value) for key, value in obs.items()}
    return convert(obs)


def mlp(sizes: Sequence[int], out_gain: float, activation: str = "tanh", ortho_init: bool = True) -> nn.Sequential:
    """Linear layers with ``activation`` between them; orthogonal weights (gain sqrt 2, ``out_gain`` for the
    last layer) and zero biases, as in OpenAI Baselines and SB3, or torch's default initialisation."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        linear = nn.Linear(fan_in, fan_out)
        if ortho_init:
            nn.init.orthogonal_(linear.weight, gain=out_gain if last else math.sqrt(2))
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def trunk(sizes: Sequence[int], activation: str = "tanh", ortho_init: bool = True) -> nn.Sequential:
    """Hidden layers only (``activation`` after each, the last included): the shared trunk of net_arch."""
    net = mlp(sizes, math.sqrt(2), activation, ortho_init)
    return nn.Sequential(*net, ACTIVATIONS[activation]())


class ActorCritic(nn.Module):
    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
        normalize_observations: bool = False,
        normalize_rewards: bool = False,
        ortho_init: bool = True,
        log_std_init: float = 0.0,
        use_sde: bool = False,
        net_arch: str = "",
        cnn: str = "auto",
        features_extractor: str = "",
        features_kwargs: str = "",
    ):
        """A ValueError (SpaceError) says which option or space part cannot be built; an ImportError names a
        features extractor's module that is not installed here."""
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if cnn not in CNNS:
            raise ValueError(f"cnn must be one of {', '.join(CNNS)}, got {cnn!r}")
        check_observation_space(observation_space)
        self.observation_space, self.action_space = observation_space, action_space
        self.subspaces = parts(observation_space)
        self.action_kind = action_kind(action_space)
        self.action_sizes = action_sizes(action_space)
        self.action_shape = tuple(getattr(action_space, "shape", None) or ())
        self.discrete = self.action_kind != GAUSSIAN
        self.image = is_image_space(observation_space)  # a lone image (a Dict with images is not)
        self.normalized_keys = vector_keys(observation_space) if normalize_observations else []
        if normalize_observations and not self.normalized_keys:
            raise ValueError("observation normalisation covers vector observations, and these have none "
                             "(images are scaled by 1/255)")
        if self.image and use_sde:
            raise ValueError("gSDE reads the policy's hidden features: not for a lone image observation")
        if features_extractor:
            self.encoder = user_extractor(features_extractor, observation_space, features_kwargs_of(features_kwargs))
        else:
            self.encoder = built_in_extractor(observation_space, cnn, ortho_init)
        try:
            arch = parse_net_arch(net_arch, hidden_sizes, linear_heads=self.image)
        except ValueError as exc:
            raise ValueError(f"net_arch {net_arch!r}: {exc}") from None
        latent = self.encoder.features_dim
        if arch.shared:
            self.shared = trunk([latent, *arch.shared], activation, ortho_init)
            latent = arch.shared[-1]
        else:
            self.shared = None
        out_dim = head_width(action_space)
        self.policy = mlp([latent, *arch.pi, out_dim], 0.01, activation, ortho_init)
        self.value_net = mlp([latent, *arch.vf, 1], 1.0, activation, ortho_init)
        self.use_sde = use_sde and not self.discrete
        if not self.discrete:
            # gSDE: one log-std per (last hidden feature of the policy, action dimension)
            features = arch.pi[-1] if arch.pi else latent
            shape = (features, out_dim) if use_sde else (out_dim,)
            self.log_std = nn.Parameter(torch.full(shape, float(log_std_init)))
        self.normalize_observations, self.normalize_rewards = bool(self.normalized_keys), normalize_rewards
        for key in self.normalized_keys:
            dim = flat_dim(observation_space if key is None else self.subspaces[key])
            self.register_buffer(statistic_name("mean", key), torch.zeros(dim))
            self.register_buffer(statistic_name("var", key), torch.ones(dim))
            self.register_buffer(statistic_name("count", key), torch.zeros((), dtype=torch.float64))
        if normalize_rewards:
            self.register_buffer("return_mean", torch.zeros((), dtype=torch.float64))
            self.register_buffer("return_var", torch.ones((), dtype=torch.float64))
            self.register_buffer("return_count", torch.zeros((), dtype=torch.float64))

    def _statistic(self, stat: str, key: str | None) -> torch.Tensor:
        return getattr(self, statistic_name(stat, key))

    def preprocess(self, obs: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
        """Raw observations as the extractors read them (relayrl/extractors.py), vector ones normalised."""
        if self.subspaces is None:
            return self._preprocess_part(None, self.observation_space, obs)
        return {key: self._preprocess_part(key, sub, obs[key]) for key, sub in self.subspaces.items()}

    def _preprocess_part(self, key: str | None, space: gym.Space, obs: torch.Tensor) -> torch.Tensor:
        x = preprocess(space, obs)
        if not self.normalize_observations or key not in self.normalized_keys:
            return x
        mean, var = self._statistic("mean", key), self._statistic("var", key)
        return ((x - mean) / torch.sqrt(var + EPSILON)).clamp(-CLIP, CLIP)

    def embed(self, obs: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """What both heads read: the features of the preprocessed observations, through the shared trunk if any.
        Computed once per observation where both heads are needed (the loss)."""
        features = self.encoder(self.preprocess(obs))
        return features if self.shared is None else self.shared(features)

    @torch.no_grad()
    def update_observation_stats(self, observations: Observation | None, reduce: Reduce | None = None) -> None:
        """Fold a batch of raw observations (any leading axes; a dict for Dict spaces) into the running mean and
        variance of each normalised part. ``reduce``: among learner ranks, the sum over all of them (every rank
        then folds the same batch of every rank's samples); a rank without samples passes None."""
        for key in self.normalized_keys:
            mean, var, count = (self._statistic(stat, key) for stat in ("mean", "var", "count"))
            dim = mean.shape[0]
            batch = np.zeros((0, dim)) if observations is None else np.asarray(select(observations, key), np.float64)
            state = float(count), mean.double().cpu().numpy(), var.double().cpu().numpy()
            new_count, new_mean, new_var = _fold(state, batch.reshape(-1, dim), reduce)
            count.fill_(new_count)
            mean.copy_(torch.as_tensor(new_mean))
            var.copy_(torch.as_tensor(new_var))

    @torch.no_grad()
    def update_return_stats(self, discounted_returns: np.ndarray, reduce: Reduce | None = None) -> None:
        """Fold discounted returns into the running variance that rewards are scaled by (``reduce``: as above)."""
        batch = np.asarray(discounted_returns, np.float64).reshape(-1, 1)
        state = float(self.return_count), np.array([float(self.return_mean)]), np.array([float(self.return_var)])
        count, mean, var = _fold(state, batch, reduce)
        self.return_count.fill_(count)
        self.return_mean.fill_(float(mean[0]))
        self.return_var.fill_(float(var[0]))

    def value(self, obs: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.value_of(self.embed(obs))

    def value_of(self, embedded: torch.Tensor) -> torch.Tensor:
        return self.value_net(embedded).squeeze(-1)

    def _gaussian(self, embedded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The Gaussian policy at embedded observations: mean, log-std (both [B, act]), last hidden features."""
        features = self.policy[:-1](embedded)
        mean = self.policy[-1](features)
        if not self.use_sde:
            return mean, self.log_std.expand_as(mean), features
        # gSDE's variance sum_j z_j^2 sigma_jk^2, with the features held constant (SB3's learn_features=False)
        variance = features.detach().pow(2) @ self.log_std.exp().pow(2)
        return mean, 0.5 * torch.log(variance + SDE_EPSILON), features

    def log_prob_entropy(
        self, obs: torch.Tensor | Mapping[str, torch.Tensor], actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of ``actions`` and entropy of the policy, one per observation."""
        return self.log_prob_entropy_of(self.embed(obs), actions)

    def log_prob_entropy_of(self, embedded: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.action_kind == BERNOULLI:
            return heads.bernoulli(self.policy(embedded), actions)
        if self.discrete:
            return heads.categorical(self.policy(embedded), self.action_sizes, actions)
        mean, log_std, _ = self._gaussian(embedded)
        z = (actions - mean) / log_std.exp()
        chosen = (-0.5 * z.pow(2) - log_std - 0.5 * LOG_2PI).sum(-1)
        entropy = (0.5 + 0.5 * LOG_2PI + log_std).sum(-1)
        return chosen, entropy

    def act(
        self, obs: torch.Tensor | Mapping[str, torch.Tensor], greedy: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample actions (or take the mode) and their log-probabilities; actions shaped as the action space's
        elements ([B] for Discrete). With gSDE each call draws one exploration matrix for the whole batch (actors
        draw one per env, see NumpyPolicy)."""
        embedded = self.embed(obs)
        if self.discrete:
            logits = self.policy(embedded)
            if self.action_kind == BERNOULLI:
                bits, log_p = heads.bernoulli_sample(logits, greedy)
                return bits.reshape(-1, *self.action_shape), log_p
            actions, log_p = heads.categorical_sample(logits, self.action_sizes, greedy)
            return (actions[:, 0] if self.action_kind == CATEGORICAL else actions), log_p
        mean, log_std, features = self._gaussian(embedded)
        if greedy:
            noise = torch.zeros_like(mean)
        elif self.use_sde:
            noise = features @ (self.log_std.exp() * torch.randn_like(self.log_std))
        else:
            noise = log_std.exp() * torch.randn_like(mean)
        z = noise / log_std.exp()
        return mean + noise, (-0.5 * z.pow(2) - log_std - 0.5 * LOG_2PI).sum(-1)


def features_kwargs_of(text: str) -> dict:
    try:
        return features_kwargs(text)
    except ValueError as exc:
        raise ValueError(f"features_kwargs: {exc}") from None


def layout(state: Mapping[str, torch.Tensor]) -> dict[str, bool]:
    """The ActorCritic options a saved model state was built with, read from what it holds: the
    normalisation statistics' buffers, and gSDE's log-std matrix (one row per feature)."""
    return {
        "normalize_observations": any(name.startswith("obs_mean") for name in state),
        "normalize_rewards": "return_var" in state,
        "use_sde": "log_std" in state and state["log_std"].dim() == 2,
    }
