"""The run as actors are told it in their Welcome: what they must act and compute with."""

from __future__ import annotations

from learner_service.config import LearnerConfig
from relayrl.v1 import relayrl_pb2 as pb


def run_config_message(config: LearnerConfig) -> pb.RunConfig:
    return pb.RunConfig(
        env_id=config.env,
        env_kwargs=config.env_kwargs,
        clip_rewards=config.clip_rewards,
        episodic_life=config.episodic_life,
        algo=config.algo,
        transport=config.transport,
        n_steps=config.n_steps,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        value_coef=config.value_coef,
        entropy_coef=config.entropy_coef,
        max_grad_norm=config.max_grad_norm,
        hidden_sizes=list(config.hidden_sizes),
        seed=config.seed,
        normalize_advantage=config.normalize_advantage,
        activation=config.activation,
        normalize_observations=config.normalize_observations,
        normalize_rewards=config.normalize_rewards,
        use_sde=config.use_sde,
        sde_sample_freq=config.sde_sample_freq,
        net_arch=config.net_arch,
        cnn=config.cnn,
        features_extractor=config.features_extractor,
        features_kwargs=config.features_kwargs,
    )
