"""Greedy play: a policy's mode actions on fresh environments, one episode per env. Used by `relayrl eval`,
the learner's evaluations during training and the learning benchmark, so all three measure the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from relayrl.envs import env_action, make_vector_env
from relayrl.model import ActorCritic, as_tensors
from relayrl.spaces import Observation


@torch.inference_mode()
def play_greedy(
    model: ActorCritic,
    env_id: str,
    episodes: int,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of the first episode of each of ``episodes`` parallel envs under the policy's mode
    actions (see play_first_episodes). ``model`` must be on the CPU."""

    def greedy(obs: Observation) -> np.ndarray:
        return model.act(as_tensors(obs), greedy=True)[0].numpy()

    return play_first_episodes(greedy, env_id, episodes, seed, env_kwargs, max_steps)


def play_first_episodes(
    act: Callable[[Observation], np.ndarray],
    env_id: str,
    episodes: int,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of the first episode of each of ``episodes`` parallel envs (all run to their end,
    so short episodes are not over-represented), made as the actors make them, acting with ``act``. Envs with no
    time limit of their own (MinAtar's) can be cut at ``max_steps``: what an episode earned by then counts."""
    env = make_vector_env(env_id, episodes, env_kwargs)
    try:
        obs, _ = env.reset(seed=seed)
        returns, lengths = np.zeros(episodes), np.zeros(episodes, np.int64)
        running = np.ones(episodes, bool)
        while running.any() and (max_steps is None or lengths.max() < max_steps):
            obs, reward, terminated, truncated, _ = env.step(env_action(act(obs), env.single_action_space))
            returns += np.where(running, reward, 0.0)
            lengths += running
            running &= ~(terminated | truncated)
        return returns, lengths
    finally:
        env.close()
