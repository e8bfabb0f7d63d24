"""The rollout collector: step a vector env with batched inference from the local policy copy.

Buffers are allocated once and reused; a Rollout returned by ``collect`` is valid until the next call.
Gymnasium's next-step autoreset: after an episode ends, the following step of that env only resets it
(its action is ignored, reward 0), so that transition is marked invalid and never trained on; so is a
step whose action the env chose for the agent (``info["fired"]``: FIRE after a lost life in Atari games).

Atari's training signals (DeepMind's wrappers) are applied here, to what is trained on only: rewards
clipped to their sign, and a lost life marked terminated (no bootstrap across it) while the game goes on.
Episode returns and lengths are always the true ones, from the env's own rewards and episode ends.
Observations keep their wire dtypes (relayrl/spaces.py): uint8 and bool pixels are never widened to float32 on
the actor; a Dict observation is held as one buffer per key.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from relayrl.envs import env_action
from relayrl.rollout import Rollout
from relayrl.spaces import Observation, action_dtype, as_wire, assign, element_shape, empty_batch

# A batch of observations -> (actions, their log-probabilities), all NumPy.
ActFn = Callable[[Observation], tuple[np.ndarray, np.ndarray]]


class RolloutCollector:
    def __init__(
        self,
        env: gym.vector.VectorEnv,
        act: ActFn,
        n_steps: int,
        seed: int,
        clip_rewards: bool = False,
        episodic_life: bool = False,
    ) -> None:
        self.env, self.act, self.n_steps = env, act, n_steps
        self.clip_rewards, self.episodic_life = clip_rewards, episodic_life
        self.action_space = env.single_action_space
        n = env.num_envs
        self.observation_space = env.single_observation_space
        self.obs = empty_batch(self.observation_space, (n_steps, n))
        # one array (not a Dict): its dtype, so that the hot loop converts without looking at the space again
        self.obs_dtype = None if isinstance(self.obs, dict) else self.obs.dtype
        self.actions = np.zeros((n_steps, n, *element_shape(self.action_space)), action_dtype(self.action_space))
        self.rewards = np.zeros((n_steps, n), np.float32)
        self.terminated = np.zeros((n_steps, n), bool)
        self.truncated = np.zeros((n_steps, n), bool)
        self.valid = np.zeros((n_steps, n), bool)
        self.log_probs = np.zeros((n_steps, n), np.float32)
        obs, info = env.reset(seed=seed)
        self.next_obs = self._wire(obs)
        self.lives = self._lives(info)
        self.resetting = np.zeros(n, bool)  # the env's next step is an autoreset step
        self.episode_return = np.zeros(n, np.float64)
        self.episode_length = np.zeros(n, np.int64)

    def _wire(self, obs: Observation) -> Observation:
        """The env's observations in their wire dtypes (never widened)."""
        if self.obs_dtype is None:
            return as_wire(self.observation_space, obs)
        return np.asarray(obs, self.obs_dtype)

    def _lives(self, info: dict) -> np.ndarray | None:
        if not self.episodic_life:
            return None
        if "lives" not in info:
            raise ValueError("episodic_life: the env reports no 'lives' in its info (only Atari envs do)")
        return np.asarray(info["lives"]).copy()

    def collect(self, policy_version: int) -> Rollout:
        finished_returns: list[np.ndarray] = []
        finished_lengths: list[np.ndarray] = []
        for t in range(self.n_steps):
            if self.obs_dtype is None:
                assign(self.obs, t, self.next_obs)
            else:
                self.obs[t] = self.next_obs
            actions, log_probs = self.act(self.next_obs)
            self.actions[t] = actions
            self.log_probs[t] = log_probs
            obs, reward, terminated, truncated, info = self.env.step(env_action(actions, self.action_space))
            self.next_obs = self._wire(obs)
            self.rewards[t] = np.sign(reward) if self.clip_rewards else reward
            self.terminated[t] = terminated
            self.truncated[t] = truncated
            stepped = ~self.resetting  # a real step of the game, though perhaps not the agent's action:
            fired = info.get("fired")  # FIRE pressed for it after a lost life (relayrl.envs)
            valid = stepped if fired is None else stepped & ~fired
            if self.episodic_life:
                lives = self._lives(info)
                self.terminated[t] |= (lives < self.lives) & stepped
                self.lives = lives
            self.valid[t] = valid
            self.episode_return += np.where(stepped, reward, 0.0)
            self.episode_length += stepped
            ended = (terminated | truncated) & stepped
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
