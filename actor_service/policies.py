"""What an actor acts with, and what it sends back, per transport.

- trajectories: a NumPy copy of the policy acts, and the rollout itself is sent. No torch in the process.
- gradients (A3C): the same NumPy policy acts (it is faster than torch at these sizes), and the gradient
  of the actor-critic loss on the rollout, from the torch ActorCritic holding the same weights, is sent;
  torch is imported only here.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from relayrl import codec
from relayrl.numpy_policy import NumpyPolicy
from relayrl.rollout import Rollout
from relayrl.v1 import relayrl_pb2 as pb
from relayrl.wire import episodes_to_proto, rollout_to_proto


class TrajectoryPolicy:
    def __init__(self, config: pb.RunConfig, observation_space: gym.Space, action_space: gym.Space, seed: int):
        self.policy = NumpyPolicy(
            action_space,
            tuple(config.hidden_sizes),
            config.activation,
            seed,
            config.normalize_observations,
            sde_rollout_steps=config.n_steps if config.use_sde else 0,
            sde_sample_freq=config.sde_sample_freq,
        )

    def load(self, weights: pb.Weights) -> None:
        self.policy.load(codec.decode_named(weights.tensors, "weights"))

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.policy.act(obs)

    def contribution(self, rollout: Rollout) -> pb.ActorMessage:
        message = pb.ActorMessage()
        rollout_to_proto(rollout, into=message.rollout)
        return message


class GradientPolicy(TrajectoryPolicy):
    def __init__(
        self, config: pb.RunConfig, observation_space: gym.Space, action_space: gym.Space, seed: int, threads: int
    ):
        super().__init__(config, observation_space, action_space, seed)
        import torch

        from relayrl.loss import LossConfig
        from relayrl.model import ActorCritic

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.model = ActorCritic(
            observation_space,
            action_space,
            tuple(config.hidden_sizes),
            config.activation,
            normalize_observations=config.normalize_observations,
            normalize_rewards=config.normalize_rewards,
            use_sde=config.use_sde,
        )
        self.loss_config = LossConfig.of(config)

    def load(self, weights: pb.Weights) -> None:
        from relayrl.wire import load_weights

        super().load(weights)
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
    return TrajectoryPolicy(config, observation_space, action_space, seed)
