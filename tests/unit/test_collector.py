"""The actor's rollout loop on real Gymnasium vector envs: next-step autoreset and episode accounting."""

import gymnasium as gym
import numpy as np
import torch

from actor_service.actor import RolloutCollector
from relayrl import codec
from relayrl.envs import make_vector_env
from relayrl.model import ActorCritic, encode_weights
from relayrl.numpy_policy import NumpyPolicy


def collector(env, n_steps=16):
    torch.manual_seed(0)
    model = ActorCritic(env.single_observation_space, env.single_action_space, (16,))
    policy = NumpyPolicy(env.single_action_space, (16,), "tanh", seed=0)  # what actors act with
    policy.load(codec.decode_named(encode_weights(model, 0).tensors))
    return RolloutCollector(env, policy.act, n_steps, seed=0)


def test_cartpole_uses_the_numpy_vector_env():
    env = make_vector_env("CartPole-v1", 4)
    assert not isinstance(env, gym.vector.SyncVectorEnv)


def test_autoreset_steps_are_invalid_and_episodes_add_up():
    c = collector(make_vector_env("CartPole-v1", 8), n_steps=64)
    seen = 0
    for _ in range(4):
        r = c.collect(0)  # valid until the next collect: buffers are reused
        ended = r.terminated | r.truncated
        assert ended.any(), "a random CartPole policy ends episodes within 64 steps"
        # the step after every episode end is the reset step, and only those are invalid
        np.testing.assert_array_equal(r.valid[1:], ~ended[:-1])
        assert not (ended & ~r.valid).any()
        assert r.rewards[~r.valid].sum() == 0.0
        # CartPole pays 1 per valid step: every reported return equals its length
        np.testing.assert_array_equal(r.episode_returns, r.episode_lengths.astype(np.float32))
        assert len(r.episode_returns) == int(ended.sum())
        seen += len(r.episode_returns)
    assert seen > 0


def test_first_step_of_a_rollout_after_an_end_is_invalid():
    c = collector(make_vector_env("CartPole-v1", 16), n_steps=8)
    previous = c.collect(0)
    ended_last = (previous.terminated | previous.truncated)[-1].copy()
    for _ in range(50):
        if ended_last.any():
            break
        previous = c.collect(0)
        ended_last = (previous.terminated | previous.truncated)[-1].copy()
    assert ended_last.any()
    nxt = c.collect(0)
    np.testing.assert_array_equal(nxt.valid[0], ~ended_last)


def test_truncation_keeps_the_final_observation_for_bootstrapping():
    # a 5-step time limit: every episode is truncated (never terminated) by a steady policy
    env = gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync", max_episode_steps=5)
    c = collector(env, n_steps=12)
    r = c.collect(0)
    assert r.truncated[4].all() and not r.terminated.any()
    # the observation after the truncating step is that episode's final one, not a reset: bootstrap from it
    assert not r.valid[5].any()
    assert r.truncated[10].all() and not r.valid[11].any()
    np.testing.assert_array_equal(r.episode_lengths, [5, 5, 5, 5])


def test_box_actions_are_float_and_sent_raw():
    c = collector(make_vector_env("Pendulum-v1", 2), n_steps=4)
    r = c.collect(3)
    assert r.actions.shape == (4, 2, 1) and r.actions.dtype == np.float32 and r.policy_version == 3
