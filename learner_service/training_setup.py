"""What the learner trains and with what, built from its config: the device, the env's spaces, the model,
the optimizer, the loss settings and the learning-rate schedule."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import torch

from learner_service.config import LearnerConfig
from learner_service.optim import Optimizer, linear_schedule, make_optimizer
from relayrl.architecture import architecture
from relayrl.config import ConfigError, describe
from relayrl.envs import EnvError, env_kwargs, single_spaces
from relayrl.model import ActorCritic


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{describe('device')}: {name} requested but CUDA is not available")
    return device


def env_spaces(config: LearnerConfig) -> tuple[gym.Space, gym.Space]:
    """The observation and action spaces of one environment of --env (a ConfigError naming the option that
    cannot make it: an unknown id, a module that does not import, keyword arguments it does not take)."""
    try:
        return single_spaces(config.env, env_kwargs(config.env_kwargs))
    except EnvError as exc:
        raise ConfigError(f"{describe('env_kwargs' if config.env_kwargs else 'env')}: {exc}") from None


def build_model(
    config: LearnerConfig, observation_space: gym.Space, action_space: gym.Space, device: torch.device
) -> ActorCritic:
    try:
        model = ActorCritic(
            observation_space,
            action_space,
            **architecture(config),
            normalize_observations=config.normalize_observations,
            normalize_rewards=config.normalize_rewards,
            ortho_init=config.ortho_init,
            log_std_init=config.log_std_init,
            use_sde=config.use_sde,
        )
    except ImportError as exc:  # the features extractor's module
        raise ConfigError(f"{describe('features_extractor')}: {exc}") from None
    except ValueError as exc:  # options the env's spaces cannot take (observation normalisation of pixels...)
        culprit = "features_extractor" if config.features_extractor and "features extractor" in str(exc) else "env"
        raise ConfigError(f"{describe(culprit)} {getattr(config, culprit)}: {exc}") from None
    return model.to(device)


def build_optimizer(config: LearnerConfig, model: ActorCritic) -> Optimizer:
    return make_optimizer(config.optimizer, model.parameters(), config.lr, config.rms_alpha, config.rms_eps)


def lr_schedule(config: LearnerConfig) -> Callable[[int], float] | None:
    """The learning rate at a number of env steps (--lr-schedule linear), or None: constant."""
    return linear_schedule(config.lr, config.max_env_steps) if config.lr_schedule == "linear" else None
