"""Observation and reward normalisation: the running statistics against NumPy over all data seen, the
learner folding batches into the model's buffers, and actors' NumPy policy normalising as the model does."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from learner_service.statistics import RunningStatistics
from relayrl import codec
from relayrl.model import ActorCritic
from relayrl.normalization import (
    discounted_returns,
    merge_moments,
    merge_sums,
    normalize_observations,
    scale_rewards,
    shifted_sums,
)
from relayrl.numpy_policy import NumpyPolicy
from relayrl.rollout import Rollout
from relayrl.wire import encode_weights, load_weights

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)


def test_merged_moments_equal_those_of_everything_seen():
    rng = np.random.default_rng(0)
    batches = [rng.normal(5.0, 3.0, (n, 3)) * [1, 10, 0.1] for n in (1, 7, 100, 2)]
    count, mean, var = 0.0, np.zeros(3), np.ones(3)
    for batch in batches:
        count, mean, var = merge_moments(count, mean, var, batch)
    everything = np.concatenate(batches)
    assert count == len(everything)
    np.testing.assert_allclose(mean, everything.mean(0), rtol=1e-10)
    np.testing.assert_allclose(var, everything.var(0), rtol=1e-10)
    assert merge_moments(count, mean, var, np.zeros((0, 3)))[0] == count


def test_summed_batches_fold_as_their_union_does():
    """Learner ranks add up shifted_sums of their own batches; merge_sums then folds the union, as merge_moments
    of the concatenated batches would, also where the mean dwarfs the spread (shifted by the running mean)."""
    rng = np.random.default_rng(1)
    count, mean, var = 50.0, np.array([1e6, -3.0, 0.5]), np.array([1e-4, 4.0, 0.01])
    for sizes in ((3, 0, 9), (1, 1, 1), (0, 0, 5)):
        batches = [rng.normal(mean, np.sqrt(var) * 2 + 1e-3, (n, 3)) for n in sizes]
        sums = sum(shifted_sums(b, mean) for b in batches)
        assert sums.shape == (3, 3) and sums[0].tolist() == [sum(sizes)] * 3
        expected = merge_moments(count, mean, var, np.concatenate(batches))
        count, mean, var = merge_sums(count, mean, var, sums, mean)
        assert count == expected[0]
        np.testing.assert_allclose(mean, expected[1], rtol=1e-12)
        np.testing.assert_allclose(var, expected[2], rtol=1e-7)
    nothing = shifted_sums(np.zeros((0, 3)), mean)
    assert merge_sums(count, mean, var, nothing + nothing, mean) == (count, mean, var)


def test_discounted_returns_restart_after_an_episode_and_skip_invalid_steps():
    rewards = np.array([[1.0, 2.0], [1.0, 0.0], [1.0, 5.0]])
    ended = np.array([[False, True], [False, False], [False, False]])
    valid = np.array([[True, True], [True, False], [True, True]])  # env 1 resets at t=1
    seen, running = discounted_returns(np.array([10.0, 3.0]), rewards, ended, valid, 0.5)
    # env 0: 0.5*10+1=6, 0.5*6+1=4, 0.5*4+1=3; env 1: 0.5*3+2=3.5 then ends; t=2 restarts: 5
    np.testing.assert_allclose(seen, [6.0, 3.5, 4.0, 3.0, 5.0])
    np.testing.assert_allclose(running, [3.0, 5.0])


def test_scaled_rewards_and_normalised_observations_are_clipped():
    np.testing.assert_allclose(scale_rewards(np.array([2.0, -400.0]), 4.0), [1.0, -10.0], rtol=1e-6)
    out = normalize_observations(np.array([[3.0, 0.0, 1e6]]), np.array([1.0, 0.0, 0.0]), np.array([4.0, 1.0, 1.0]))
    np.testing.assert_allclose(out, [[1.0, 0.0, 10.0]], rtol=1e-6)


def model(normalize=True, action_space=None, seed=0):
    torch.manual_seed(seed)
    space = action_space or gym.spaces.Discrete(3)
    return ActorCritic(OBS, space, (16,), normalize_observations=normalize, normalize_rewards=normalize)


def test_the_model_normalises_its_inputs_with_its_buffers():
    m = model()
    rng = np.random.default_rng(1)
    data = rng.normal([100.0, -5.0, 0.0], [10.0, 1.0, 0.01], (500, 3)).astype(np.float32)
    m.update_observation_stats(data)
    np.testing.assert_allclose(m.obs_mean.numpy(), data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(m.obs_var.numpy(), data.var(0), rtol=1e-4)
    plain = model(normalize=False)
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith(("obs_", "return_"))})
    x = torch.as_tensor(data[:5])
    expected = torch.as_tensor(normalize_observations(data[:5], data.mean(0), data.var(0)))
    torch.testing.assert_close(m.value(x), plain.value(expected), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("space", [gym.spaces.Discrete(3), gym.spaces.Box(-1, 1, (2,), np.float32)])
def test_actors_numpy_policy_normalises_as_the_model_does(space):
    m = model(action_space=space)
    m.update_observation_stats(np.random.default_rng(2).normal(50.0, 7.0, (64, 3)))
    policy = NumpyPolicy(space, (16,), "tanh", seed=0, normalize=True)
    policy.load(codec.decode_named(encode_weights(m, 0).tensors))
    obs = np.random.default_rng(3).normal(50.0, 7.0, (32, 3)).astype(np.float32)
    actions, log_probs = policy.act(obs)
    torch_log_probs, _ = m.log_prob_entropy(torch.as_tensor(obs), torch.as_tensor(actions))
    np.testing.assert_allclose(log_probs, torch_log_probs.detach().numpy(), rtol=1e-4, atol=1e-4)
    with pytest.raises(codec.CodecError, match="obs_mean"):
        NumpyPolicy(space, (16,), "tanh", seed=0, normalize=True).load(
            codec.decode_named(encode_weights(model(normalize=False, action_space=space), 0).tensors)
        )


def test_statistics_travel_with_the_weights():
    source, target = model(seed=0), model(seed=1)
    source.update_observation_stats(np.full((4, 3), 7.0))
    source.update_return_stats(np.array([1.0, 3.0]))
    load_weights(target, encode_weights(source, 5))
    assert target.obs_mean.tolist() == [7.0, 7.0, 7.0] and float(target.return_var) == 1.0
    assert float(target.obs_count) == 4 and float(target.return_count) == 2


def rollout(rewards, valid=None, obs_value=1.0):
    T, N = rewards.shape
    return Rollout(
        observations=np.full((T, N, 3), obs_value, np.float32),
        actions=np.zeros((T, N), np.int64),
        rewards=rewards.astype(np.float32),
        terminated=np.zeros((T, N), bool),
        truncated=np.zeros((T, N), bool),
        valid=np.ones((T, N), bool) if valid is None else valid,
        log_probs=np.zeros((T, N), np.float32),
        bootstrap_observations=np.zeros((N, 3), np.float32),
        policy_version=0,
    )


def test_the_learner_scales_rewards_by_the_return_std_and_keeps_each_actors_returns_apart():
    m = model()
    stats = RunningStatistics(m, gamma=1.0)
    a, b = rollout(np.full((2, 1), 2.0)), rollout(np.full((2, 1), -2.0))
    scaled = stats.before_update([0, 1], [a, b])
    # returns seen: actor 0: 2, 4; actor 1: -2, -4 (apart: not 2, 0) -> variance 10
    assert float(m.return_var) == pytest.approx(10.0)
    np.testing.assert_allclose(scaled[0].rewards, 2.0 / np.sqrt(10.0), rtol=1e-6)
    assert a.rewards[0, 0] == 2.0  # the received rollout itself is left as it came
    stats.before_update([0], [rollout(np.full((1, 1), 2.0))])  # actor 0 continues from 4: sees 6
    assert float(m.return_count) == 5 and float(m.return_mean) == pytest.approx(6.0 / 5)


def test_observation_statistics_take_valid_steps_after_the_update():
    m = model()
    stats = RunningStatistics(m, gamma=0.9)
    valid = np.array([[True, False], [True, True]])
    r = rollout(np.zeros((2, 2)), valid=valid, obs_value=4.0)
    r.observations[0, 1] = 1e6  # an autoreset step's observation: never counted
    assert stats.before_update([0], [r])[0] is not r  # rewards normalised: a scaled copy
    assert float(m.obs_count) == 0
    stats.after_update([r])
    assert float(m.obs_count) == 3 and m.obs_mean.tolist() == [4.0, 4.0, 4.0]


def test_env_steps_leave_out_autoreset_steps():
    r = rollout(np.zeros((4, 2)), valid=np.array([[1, 1], [0, 1], [1, 1], [1, 0]], bool))
    assert r.num_steps == 6


def test_reward_scaling_clips_both_ways_keeps_float32_and_survives_a_zero_variance():
    rewards = np.array([[-1e6, 1e6, 3.0]], np.float32)
    scaled = scale_rewards(rewards, return_var=4.0)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [[-10.0, 10.0, 1.5]], rtol=1e-6)
    at_zero = scale_rewards(np.array([1e-5, -1e-5], np.float32), return_var=0.0)  # no return seen yet
    assert np.isfinite(at_zero).all()
    np.testing.assert_allclose(at_zero, [0.1, -0.1], rtol=1e-4)  # divided by sqrt(EPSILON), not NaN


def test_an_empty_rollout_advances_no_return():
    running = np.array([1.5, -2.0])
    seen, after = discounted_returns(running, np.zeros((0, 2)), np.zeros((0, 2), bool), np.zeros((0, 2), bool), 0.9)
    assert seen.shape == (0,)
    np.testing.assert_array_equal(after, running)


def test_observation_normalisation_clips_both_ways_and_survives_a_constant_feature():
    mean, var = np.array([0.0, 5.0]), np.array([1.0, 0.0])  # the second feature never varied
    out = normalize_observations(np.array([[-1e3, 5.0], [1e3, 5.0]], np.float32), mean, var)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, [[-10.0, 0.0], [10.0, 0.0]])


def test_given_the_sum_over_ranks_the_model_folds_every_ranks_batch():
    """Among learner ranks (learner_service/group.py) update_*_stats take ``reduce``, the sum over the ranks: here
    the other rank's batch is added by hand. The statistics then equal one model's that saw both batches, and
    a rank with nothing of its own (None) folds the others' alone."""
    rng = np.random.default_rng(3)
    ours, theirs = rng.normal(2.0, 3.0, (40, 3)), rng.normal(-1.0, 0.5, (25, 3))
    returns_ours, returns_theirs = rng.normal(5.0, 2.0, 30), rng.normal(0.0, 1.0, 10)
    ranked, union, idle = model(), model(), model()
    for step in range(3):  # the shift (the running mean) moves between folds
        obs_a, obs_b = ours + step, theirs * (step + 1)

        def other_obs(sums, m, b=obs_b):
            return sums + shifted_sums(b, m.obs_mean.double().numpy())

        ranked.update_observation_stats(obs_a, lambda sums, m=ranked: other_obs(sums, m))
        idle.update_observation_stats(None, lambda sums, m=idle, a=obs_a: other_obs(sums, m)
                                      + shifted_sums(a, m.obs_mean.double().numpy()))
        union.update_observation_stats(np.concatenate([obs_a, obs_b]))
        shift = np.array([float(ranked.return_mean)])
        ranked.update_return_stats(returns_ours, lambda sums, s=shift: sums + shifted_sums(
            returns_theirs.reshape(-1, 1), s))
        union.update_return_stats(np.concatenate([returns_ours, returns_theirs]))
    for name in ("obs_mean", "obs_var", "obs_count"):
        for m in (ranked, idle):
            torch.testing.assert_close(getattr(m, name), getattr(union, name), rtol=1e-6, atol=0, msg=name)
    for name in ("return_mean", "return_var", "return_count"):
        torch.testing.assert_close(getattr(ranked, name), getattr(union, name), rtol=1e-9, atol=0, msg=name)
    assert float(union.obs_count) == 3 * 65 and float(union.return_count) == 3 * 40
