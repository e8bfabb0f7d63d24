"""gSDE (generalised state-dependent exploration): actors' NumPy sampling and the model's log-probabilities
agree, the noise is a linear function of the features held fixed between draws, and the std follows
sqrt(z^2 . sigma^2) as in Raffin et al. (2022)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from relayrl import codec
from relayrl.distributions import SDE_EPSILON
from relayrl.model import ActorCritic
from relayrl.numpy_policy import NumpyPolicy
from relayrl.wire import encode_weights

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-2, 2, (2,), np.float32)


def sde_model():
    torch.manual_seed(0)
    model = ActorCritic(OBS, ACT, (8, 5), use_sde=True, log_std_init=-1.0)
    with torch.no_grad():
        model.log_std.copy_(torch.linspace(-2.0, 0.5, 10).reshape(5, 2))
    return model


def features(model, obs):
    with torch.no_grad():
        return model.policy[:-1](torch.as_tensor(obs)).numpy()


def test_the_std_is_the_root_of_squared_features_times_sigma_squared():
    model = sde_model()
    assert tuple(model.log_std.shape) == (5, 2)
    obs = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    z, sigma = features(model, obs), np.exp(model.log_std.detach().numpy())
    std = np.sqrt(z**2 @ sigma**2 + SDE_EPSILON)
    with torch.no_grad():
        mean = model.policy(torch.as_tensor(obs)).numpy()
    actions = mean + 0.3 * std
    log_probs, entropy = model.log_prob_entropy(torch.as_tensor(obs), torch.as_tensor(actions))
    expected = (-0.5 * 0.3**2 - np.log(std) - 0.5 * np.log(2 * np.pi)).sum(1)
    np.testing.assert_allclose(log_probs.detach().numpy(), expected, rtol=1e-5)
    expected_entropy = (0.5 + 0.5 * np.log(2 * np.pi) + np.log(std)).sum(1)
    np.testing.assert_allclose(entropy.detach().numpy(), expected_entropy, rtol=1e-5)


@pytest.mark.parametrize("rollout_steps, freq", [(3, 0), (5, 3)])
def test_numpy_actors_sample_what_the_model_scores_and_redraw_on_schedule(rollout_steps, freq):
    model = sde_model()
    policy = NumpyPolicy(ACT, (8, 5), "tanh", seed=0, sde_rollout_steps=rollout_steps, sde_sample_freq=freq)
    policy.load(codec.decode_named(encode_weights(model, 0).tensors))
    obs = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    with torch.no_grad():
        mean = model.policy(torch.as_tensor(obs)).numpy()
    draws = []
    for _ in range(6):
        actions, log_probs = policy.act(obs)
        torch_log_probs, _ = model.log_prob_entropy(torch.as_tensor(obs), torch.as_tensor(actions))
        np.testing.assert_allclose(log_probs, torch_log_probs.detach().numpy(), rtol=1e-4, atol=1e-4)
        draws.append(actions - mean)
    # the same observations give the same noise until the exploration matrix is drawn again: at each
    # rollout's start (calls 0, 3 / 0, 5) and every `freq` steps within a rollout (call 3 of 5)
    redrawn = {3} if rollout_steps == 3 else {3, 5}
    for call in range(1, 6):
        fresh = call in redrawn or any(c in redrawn for c in range(1, call))
        same_as_first = np.abs(draws[call] - draws[0]).max() < 1e-6
        assert same_as_first != fresh, call
    # each env has its own matrix: noise is linear in that env's features, z(s) . theta_env
    z = features(model, obs)
    theta = policy.exploration
    np.testing.assert_allclose(draws[5], np.einsum("nf,nfa->na", z, theta), rtol=1e-4, atol=1e-5)


def test_a_state_independent_log_std_is_refused_by_an_sde_actor():
    plain = ActorCritic(OBS, ACT, (8, 5))
    with pytest.raises(codec.CodecError, match="log_std"):
        NumpyPolicy(ACT, (8, 5), "tanh", seed=0, sde_rollout_steps=4).load(
            codec.decode_named(encode_weights(plain, 0).tensors)
        )


def test_the_torch_model_samples_with_its_gsde_std_and_scores_what_it_samples():
    """model.act (torch actors for image envs, evaluation) draws one exploration matrix per call: over many
    calls at one observation the actions spread as the std _gaussian gives, and each log-probability is the
    one log_prob_entropy computes."""
    model = sde_model()
    obs = torch.as_tensor(np.random.default_rng(1).normal(size=(1, 3)).astype(np.float32))
    with torch.no_grad():
        mean, log_std, _ = model._gaussian(model.embed(obs))
        draws = [model.act(obs) for _ in range(3000)]
    actions = torch.cat([a for a, _ in draws])
    log_probs = torch.cat([lp for _, lp in draws])
    np.testing.assert_allclose(actions.mean(0).numpy(), mean[0].numpy(), atol=0.1 * float(log_std.exp().max()))
    np.testing.assert_allclose(actions.std(0).numpy(), log_std.exp()[0].numpy(), rtol=0.1)
    expected, _ = model.log_prob_entropy(obs.expand(len(actions), -1), actions)
    np.testing.assert_allclose(log_probs.numpy(), expected.detach().numpy(), rtol=1e-4, atol=1e-4)


def test_features_of_zero_give_the_floor_std_not_nan():
    """Hidden features all 0 (a saturated or zeroed layer): the variance is 0 and SDE_EPSILON keeps the
    log-std finite, at log(sqrt(SDE_EPSILON))."""
    model = sde_model()
    with torch.no_grad():
        for p in model.policy[:-1].parameters():
            p.zero_()
    obs = torch.ones(2, 3)
    mean, log_std, _ = model._gaussian(model.embed(obs))
    np.testing.assert_allclose(log_std.detach().numpy(), np.full((2, 2), 0.5 * np.log(SDE_EPSILON)), rtol=1e-6)
    log_p, entropy = model.log_prob_entropy(obs, mean.detach())
    assert torch.isfinite(log_p).all() and torch.isfinite(entropy).all()
