"""The one model definition every side uses: an actor-critic for vector or image observations.

Vector observations: separate policy and value MLPs (as Stable-Baselines3 and the A3C paper's feed-forward
agents). Images (a 3-D Box, channels first, e.g. Atari's 4x84x84 uint8 stacks): the Nature CNN (Mnih et al.
2015) shared by a linear policy head and a linear value head, as SB3's CnnPolicy; uint8 pixels travel and
reach the device as they are and are scaled by 1/255 here. Both use
orthogonal initialisation (optional), and a categorical head for Discrete actions or a diagonal Gaussian
head for Box actions: with a state-independent log-std (initialised at ``log_std_init``), or with
generalised state-dependent exploration (``use_sde``, gSDE: Raffin et al. 2022), where the noise is a
linear function of the policy's last hidden features, eps = z(s) . theta, theta ~ N(0, sigma^2) resampled
per env every few steps, so that the action's std is sqrt(z(s)^2 . sigma^2). With
``normalize_observations`` the model holds the running observation statistics as buffers and normalises
its inputs itself: the statistics then travel with the weights and live in checkpoints, so the learner,
every actor and ``relayrl eval`` see the same ones. With ``normalize_rewards`` it also holds the variance
of the discounted return that rewards are scaled by (the value net predicts returns in that scale).
The distribution maths is written out by hand: it is short, and torch.distributions costs more than the
MLP at these sizes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from relayrl.distributions import LOG_2PI, SDE_EPSILON
from relayrl.envs import is_image
from relayrl.normalization import CLIP, EPSILON, merge_moments

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def nature_cnn(channels: int, height: int, width: int, ortho_init: bool = True) -> nn.Sequential:
    """Three convolutions and a 512-unit layer (Mnih et al. 2015), ReLUs between; orthogonal gain sqrt 2."""
    convs = nn.Sequential(
        nn.Conv2d(channels, 32, 8, stride=4), nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
        nn.Flatten(),
    )
    with torch.no_grad():
        flat = convs(torch.zeros(1, channels, height, width)).shape[1]
    net = nn.Sequential(*convs, nn.Linear(flat, 512), nn.ReLU())
    if ortho_init:
        for layer in net:
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.orthogonal_(layer.weight, gain=math.sqrt(2))
                nn.init.zeros_(layer.bias)
    return net


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


class ActorCritic(nn.Module):
    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: Sequence[int],
        activation: str = "tanh",
        normalize_observations: bool = False,
        normalize_rewards: bool = False,
        ortho_init: bool = True,
        log_std_init: float = 0.0,
        use_sde: bool = False,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.image = is_image(observation_space)
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) not in (1, 3):
            raise ValueError(f"observations must be a flat Box or an image Box [C, H, W], got {observation_space}")
        if self.image and (normalize_observations or use_sde):
            raise ValueError("image observations are scaled by 1/255: no observation normalisation or gSDE")
        if self.image and min(observation_space.shape[1:]) < 36:
            raise ValueError(f"the Nature CNN needs images of at least 36x36 [C, H, W], got {observation_space.shape}")
        obs_dim = observation_space.shape[0]
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if self.discrete:
            out_dim = int(action_space.n)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            out_dim = action_space.shape[0]
            # gSDE: one log-std per (last hidden feature, action dimension)
            shape = (hidden_sizes[-1], out_dim) if use_sde else (out_dim,)
            self.log_std = nn.Parameter(torch.full(shape, float(log_std_init)))
        else:
            raise ValueError(f"actions must be Discrete or a flat Box, got {action_space}")
        self.use_sde = use_sde and not self.discrete
        if self.image:
            self.encoder = nature_cnn(*observation_space.shape, ortho_init=ortho_init)
            self.policy = mlp([512, out_dim], 0.01, activation, ortho_init)  # one linear layer each
            self.value_net = mlp([512, 1], 1.0, activation, ortho_init)
        else:
            self.policy = mlp([obs_dim, *hidden_sizes, out_dim], 0.01, activation, ortho_init)
            self.value_net = mlp([obs_dim, *hidden_sizes, 1], 1.0, activation, ortho_init)
        self.normalize_observations, self.normalize_rewards = normalize_observations, normalize_rewards
        if normalize_observations:
            self.register_buffer("obs_mean", torch.zeros(obs_dim))
            self.register_buffer("obs_var", torch.ones(obs_dim))
            self.register_buffer("obs_count", torch.zeros((), dtype=torch.float64))
        if normalize_rewards:
            self.register_buffer("return_mean", torch.zeros((), dtype=torch.float64))
            self.register_buffer("return_var", torch.ones((), dtype=torch.float64))
            self.register_buffer("return_count", torch.zeros((), dtype=torch.float64))

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw observations as the networks see them (unchanged without observation normalisation)."""
        if not self.normalize_observations:
            return obs
        return ((obs - self.obs_mean) / torch.sqrt(self.obs_var + EPSILON)).clamp(-CLIP, CLIP)

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """What both heads read: the CNN's features of images scaled to [0, 1], or the (normalised) vector.
        Computed once per observation where both heads are needed (the loss)."""
        if self.image:
            return self.encoder(obs.float() / 255.0)
        return self.normalize(obs)

    @torch.no_grad()
    def update_observation_stats(self, observations: np.ndarray) -> None:
        """Fold a batch of raw observations [..., obs_dim] into the running mean and variance."""
        batch = np.asarray(observations, np.float64).reshape(-1, self.obs_mean.shape[0])
        count, mean, var = merge_moments(
            float(self.obs_count), self.obs_mean.double().cpu().numpy(), self.obs_var.double().cpu().numpy(), batch
        )
        self.obs_count.fill_(count)
        self.obs_mean.copy_(torch.as_tensor(mean))
        self.obs_var.copy_(torch.as_tensor(var))

    @torch.no_grad()
    def update_return_stats(self, discounted_returns: np.ndarray) -> None:
        """Fold discounted returns into the running variance that rewards are scaled by."""
        batch = np.asarray(discounted_returns, np.float64).reshape(-1)
        count, mean, var = merge_moments(
            float(self.return_count), float(self.return_mean), float(self.return_var), batch
        )
        self.return_count.fill_(count)
        self.return_mean.fill_(float(mean))
        self.return_var.fill_(float(var))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
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

    def log_prob_entropy(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of ``actions`` and entropy of the policy, one per observation."""
        return self.log_prob_entropy_of(self.embed(obs), actions)

    def log_prob_entropy_of(self, embedded: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.discrete:
            log_p = torch.log_softmax(self.policy(embedded), dim=-1)
            chosen = log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
            entropy = -(log_p.exp() * log_p).sum(-1)
            return chosen, entropy
        mean, log_std, _ = self._gaussian(embedded)
        z = (actions - mean) / log_std.exp()
        chosen = (-0.5 * z.pow(2) - log_std - 0.5 * LOG_2PI).sum(-1)
        entropy = (0.5 + 0.5 * LOG_2PI + log_std).sum(-1)
        return chosen, entropy

    def act(self, obs: torch.Tensor, greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample actions (or take the mode) and their log-probabilities. With gSDE each call draws one
        exploration matrix for the whole batch (actors draw one per env, see NumpyPolicy)."""
        embedded = self.embed(obs)
        if self.discrete:
            log_p = torch.log_softmax(self.policy(embedded), dim=-1)
            if greedy:
                actions = log_p.argmax(-1)
            else:
                actions = torch.multinomial(log_p.exp(), 1).squeeze(-1)
            return actions, log_p.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        mean, log_std, features = self._gaussian(embedded)
        if greedy:
            noise = torch.zeros_like(mean)
        elif self.use_sde:
            noise = features @ (self.log_std.exp() * torch.randn_like(self.log_std))
        else:
            noise = log_std.exp() * torch.randn_like(mean)
        z = noise / log_std.exp()
        return mean + noise, (-0.5 * z.pow(2) - log_std - 0.5 * LOG_2PI).sum(-1)


def layout(state: Mapping[str, torch.Tensor]) -> dict[str, bool]:
    """The ActorCritic options a saved model state was built with, read from what it holds: the
    normalisation statistics' buffers, and gSDE's log-std matrix (one row per feature)."""
    return {
        "normalize_observations": "obs_mean" in state,
        "normalize_rewards": "return_var" in state,
        "use_sde": "log_std" in state and state["log_std"].dim() == 2,
    }
