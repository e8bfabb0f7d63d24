"""What an actor acts with, and what it sends back, per transport.

Acting: observations an MLP reads (vectors, one-hot, a Dict of those) with a NumPy copy of the policy (no torch
in the process: it costs ~2.7 s of CPU at start-up, as long as CartPole takes to learn); images, and a user's
own features extractor, with the torch ActorCritic itself on one thread (a CNN in NumPy would be far slower;
torch's start-up is small beside an Atari run).
- trajectories: the rollout itself is sent.
- gradients (A3C): the gradient of the actor-critic loss on the rollout, from the torch ActorCritic holding
  the same weights, is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from relayrl import codec
from relayrl.architecture import architecture
from relayrl.numpy_policy import NumpyPolicy
from relayrl.rollout import Rollout
from relayrl.spaces import Observation, needs_torch
from relayrl.v1 import relayrl_pb2 as pb
from relayrl.wire import episodes_to_proto, rollout_to_proto

if TYPE_CHECKING:
    from relayrl.model import ActorCritic


def torch_model(
    config: pb.RunConfig, observation_space: gym.Space, action_space: gym.Space, seed: int, threads: int
) -> ActorCritic:
    """The run's ActorCritic on this actor's CPU threads; torch is imported only here."""
    try:
        import torch
    except ImportError:  # the slim actor image (deploy/docker/Dockerfile.actor) has none
        raise SystemExit(
            "relayrl actor: this run needs torch on the actor (image observations, a features extractor, or "
            "--transport gradients); install it, or use the full image rather than the slim actor image"
        ) from None

    from relayrl.model import ActorCritic

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    try:
        return ActorCritic(
            observation_space,
            action_space,
            **architecture(config),
            normalize_observations=config.normalize_observations,
            normalize_rewards=config.normalize_rewards,
            use_sde=config.use_sde,
        )
    except ImportError as exc:  # the run's features extractor lives in a module this actor lacks
        raise SystemExit(f"relayrl actor: {exc}; install it where every actor runs") from None


class TorchActing:
    """Acts with the torch ActorCritic (images)."""

    def __init__(self, model: ActorCritic) -> None:
        self.model = model

    def load(self, weights: pb.Weights) -> None:
        from relayrl.wire import load_weights

        load_weights(self.model, weights)

    def act(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from relayrl.model import as_tensors

        with torch.no_grad():
            actions, log_probs = self.model.act(as_tensors(obs))
        return actions.numpy(), log_probs.numpy()


class NumpyActing:
    """Acts with the NumPy copy of the policy (vectors)."""

    def __init__(self, config: pb.RunConfig, observation_space: gym.Space, action_space: gym.Space, seed: int) -> None:
        self.policy = NumpyPolicy(
            action_space,
            tuple(config.hidden_sizes),
            config.activation,
            seed,
            config.normalize_observations,
            sde_rollout_steps=config.n_steps if config.use_sde else 0,
            sde_sample_freq=config.sde_sample_freq,
            observation_space=observation_space,
            net_arch=config.net_arch,
        )

    def load(self, weights: pb.Weights) -> None:
        self.policy.load(codec.decode_named(weights.tensors, "weights"))

    def act(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        return self.policy.act(obs)


class TrajectoryPolicy:
    def __init__(
        self, config: pb.RunConfig, observation_space: gym.Space, action_space: gym.Space, seed: int, threads: int = 1
    ):
        self.model: ActorCritic | None = None
        if needs_torch(observation_space) or config.features_extractor:
            self.model = torch_model(config, observation_space, action_space, seed, threads)
            self.acting: TorchActing | NumpyActing = TorchActing(self.model)
        else:
            self.acting = NumpyActing(config, observation_space, action_space, seed)

    def load(self, weights: pb.Weights) -> None:
        self.acting.load(weights)

    def act(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        return self.acting.act(obs)

    def contribution(self, rollout: Rollout) -> pb.ActorMessage:
        message = pb.ActorMessage()
        rollout_to_proto(rollout, into=message.rollout)
        return message


class GradientPolicy(TrajectoryPolicy):
    def __init__(
        self, config: pb.RunConfig, observation_space: gym.Space, action_space: gym.Space, seed: int, threads: int
    ):
        super().__init__(config, observation_space, action_space, seed, threads)
        from relayrl.loss import LossConfig

        if self.model is None:  # vectors act in NumPy; the gradients need the torch model too
            self.model = torch_model(config, observation_space, action_space, seed, threads)
        self.loss_config = LossConfig.of(config)

    def load(self, weights: pb.Weights) -> None:
        from relayrl.wire import load_weights

        super().load(weights)
        if not isinstance(self.acting, TorchActing):  # else the acting model is this one, just loaded
            load_weights(self.model, weights)

    def contribution(self, rollout: Rollout) -> pb.ActorMessage:
        from relayrl.loss import actor_critic_loss

        self.model.zero_grad(set_to_none=True)
        terms = actor_critic_loss(self.model, [rollout], self.loss_config)
        terms.loss.backward()
        message = pb.ActorMessage()
        gradient = message.gradient
        gradient.policy_version = rollout.policy_version
        codec.add_named(gradient.grads, {name: p.grad for name, p in self.model.named_parameters()})
        gradient.env_steps = rollout.num_steps
        gradient.episodes.CopyFrom(episodes_to_proto(rollout.episode_returns, rollout.episode_lengths))
        gradient.policy_loss, gradient.value_loss, gradient.entropy = terms.policy_loss, terms.value_loss, terms.entropy
        return message


def make_policy(
    config: pb.RunConfig, observation_space: gym.Space, action_space: gym.Space, seed: int, threads: int
) -> TrajectoryPolicy | GradientPolicy:
    if config.transport == "gradients":
        return GradientPolicy(config, observation_space, action_space, seed, threads)
    return TrajectoryPolicy(config, observation_space, action_space, seed, threads)
