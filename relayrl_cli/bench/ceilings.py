"""The one-core ceilings: the vector env stepped with random actions, then with batched inference."""

from __future__ import annotations

import time

import numpy as np

from relayrl.envs import make_vector_env
from relayrl.numpy_policy import NumpyPolicy


def _rate(step, seconds: float, num_envs: int) -> float:
    step()  # warm up
    steps, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(50):
            step()
        steps += 50 * num_envs
    return steps / elapsed


def env_only(env_id: str, num_envs: int, seconds: float, seed: int = 0) -> float:
    """Env steps per second with uniformly random actions and no policy."""
    env = make_vector_env(env_id, num_envs)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n = int(env.single_action_space.n)
    try:
        return _rate(lambda: env.step(rng.integers(0, n, num_envs)), seconds, num_envs)
    finally:
        env.close()


def env_and_inference(
    env_id: str, num_envs: int, seconds: float, hidden_sizes: tuple[int, ...], activation: str, seed: int = 0
) -> float:
    """Env steps per second with actions from the actor's batched policy (random weights, same shapes)."""
    from relayrl import codec
    from relayrl.model import ActorCritic
    from relayrl.wire import encode_weights

    env = make_vector_env(env_id, num_envs)
    model = ActorCritic(env.single_observation_space, env.single_action_space, hidden_sizes, activation)
    policy = NumpyPolicy(env.single_action_space, hidden_sizes, activation, seed)
    policy.load(codec.decode_named(encode_weights(model, 0).tensors))
    state = {"obs": env.reset(seed=seed)[0]}

    def step() -> None:
        actions, _ = policy.act(state["obs"])
        state["obs"] = env.step(actions)[0]

    try:
        return _rate(step, seconds, num_envs)
    finally:
        env.close()
