"""The rollout collector: step a vector env with batched inference from the local policy copy.

Buffers are allocated once and reused; a Rollout returned by ``collect`` is valid until the next call.
Gymnasium's next-step autoreset: after an episode ends, the following step of that env only resets it
(its action is ignored, reward 0), so that transition is marked invalid and never trained on.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from relayrl.envs import env_action
from relayrl.rollout import Rollout

# A batch of observations -> (actions, their log-probabilities), all NumPy.
ActFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class RolloutCollector:
    def __init__(self, env: gym.vector.VectorEnv, act: ActFn, n_steps: int, seed: int) -> None:
        self.env, self.act, self.n_steps = env, act, n_steps
        self.action_space = env.single_action_space
        n = env.num_envs
        obs_shape = env.single_observation_space.shape
        act_shape = () if isinstance(self.action_space, gym.spaces.Discrete) else self.action_space.shape
        act_dtype = np.int64 if isinstance(self.action_space, gym.spaces.Discrete) else np.float32
        self.obs = np.zeros((n_steps, n, *obs_shape), np.float32)
        self.actions = np.zeros((n_steps, n, *act_shape), act_dtype)
        self.rewards = np.zeros((n_steps, n), np.float32)
        self.terminated = np.zeros((n_steps, n), bool)
        self.truncated = np.zeros((n_steps, n), bool)
        self.valid = np.zeros((n_steps, n), bool)
        self.log_probs = np.zeros((n_steps, n), np.float32)
        obs, _ = env.reset(seed=seed)
        self.next_obs = np.asarray(obs, np.float32)
        self.resetting = np.zeros(n, bool)  # the env's next step is an autoreset step
        self.episode_return = np.zeros(n, np.float64)
        self.episode_length = np.zeros(n, np.int64)

    def collect(self, policy_version: int) -> Rollout:
        finished_returns: list[np.ndarray] = []
        finished_lengths: list[np.ndarray] = []
        for t in range(self.n_steps):
            self.obs[t] = self.next_obs
            actions, log_probs = self.act(self.next_obs)
            self.actions[t] = actions
            self.log_probs[t] = log_probs
            obs, reward, terminated, truncated, _ = self.env.step(env_action(actions, self.action_space))
            self.next_obs = np.asarray(obs, np.float32)
            self.rewards[t] = reward
            self.terminated[t] = terminated
            self.truncated[t] = truncated
            valid = ~self.resetting
            self.valid[t] = valid
            self.episode_return += np.where(valid, reward, 0.0)
            self.episode_length += valid
            ended = (terminated | truncated) & valid
            if ended.any():
                finished_returns.append(self.episode_return[ended].astype(np.float32))
                finished_lengths.append(self.episode_length[ended].astype(np.uint32))
                self.episode_return[ended] = 0.0
                self.episode_length[ended] = 0
            self.resetting = ended
        return Rollout(
            observations=self.obs,
            actions=self.actions,
            rewards=self.rewards,
            terminated=self.terminated,
            truncated=self.truncated,
            valid=self.valid,
            log_probs=self.log_probs,
            bootstrap_observations=self.next_obs,
            policy_version=policy_version,
            episode_returns=np.concatenate(finished_returns) if finished_returns else np.zeros(0, np.float32),
            episode_lengths=np.concatenate(finished_lengths) if finished_lengths else np.zeros(0, np.uint32),
        )
