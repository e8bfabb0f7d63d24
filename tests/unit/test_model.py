"""ActorCritic's two policy heads against NumPy formulas and hand-computed values.

The Gaussian head is tested with log_std = [-0.5, 0.7]: with log_std = 0 (the initial value) a wrong sign
on log_std in a log-probability or the entropy would change nothing.
"""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from relayrl import codec
from relayrl.model import ActorCritic
from relayrl.numpy_policy import NumpyPolicy
from relayrl.wire import encode_weights

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
BOX = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
DISCRETE = gym.spaces.Discrete(3)
LOG_STD = np.array([-0.5, 0.7])
LOG_2PI = math.log(2 * math.pi)


def sharpened(action_space, seed=0, hidden=(16,)):
    """A model whose policy outputs vary with the observation (the 0.01-gain init is nearly constant)."""
    torch.manual_seed(seed)
    model = ActorCritic(OBS, action_space, hidden)
    with torch.no_grad():
        for p in model.policy.parameters():
            p.add_(torch.randn_like(p) * 0.5)
        if not model.discrete:
            model.log_std.copy_(torch.tensor(LOG_STD, dtype=torch.float32))
    return model


def observations(n=64, seed=1):
    return np.random.default_rng(seed).normal(size=(n, OBS.shape[0])).astype(np.float32)


def head_outputs(model, obs):
    with torch.no_grad():
        return model.policy(torch.from_numpy(obs)).numpy().astype(np.float64)


def gaussian_log_prob(actions, mean, log_std):
    """log N(a; mean, exp(log_std)^2), summed over independent dimensions, from the density's definition."""
    std = np.exp(log_std)
    density = np.exp(-0.5 * ((actions - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))
    return np.log(density).sum(-1)


def gaussian_entropy_by_quadrature(log_std):
    """-integral p log p, per dimension on a fine grid (independent of the closed form), summed."""
    total = 0.0
    for s in np.exp(log_std):
        x = np.linspace(-12 * s, 12 * s, 200_001)
        p = np.exp(-0.5 * (x / s) ** 2) / (s * np.sqrt(2 * np.pi))
        total += -np.sum(p * np.log(p)) * (x[1] - x[0])
    return total


# ---------------------------------------------------------------- Gaussian head


def test_gaussian_hand_computed():
    """mean = bias (zero last-layer weight); at the mean, log p = -sum(log_std) - log(2 pi) for 2 dimensions."""
    model = ActorCritic(OBS, BOX, (4,))
    with torch.no_grad():
        model.policy[-1].weight.zero_()
        model.policy[-1].bias.copy_(torch.tensor([0.3, -1.0]))
        model.log_std.copy_(torch.tensor([-0.5, 0.7]))
    obs = torch.zeros(2, 3)
    actions = torch.tensor([[0.3, -1.0], [0.3 + math.exp(-0.5), -1.0 - 2 * math.exp(0.7)]])
    log_p, entropy = model.log_prob_entropy(obs, actions)
    # at the mean: -(-0.5 + 0.7) - log(2 pi) = -0.2 - 1.837877 = -2.037877
    # one std off in dim 0 and two in dim 1: -0.5 * (1 + 4) more
    np.testing.assert_allclose(log_p.detach().numpy(), [-2.037877, -4.537877], atol=1e-5)
    # entropy = sum(0.5 + 0.5 log(2 pi) + log_std) = 1 + 1.837877 + 0.2
    np.testing.assert_allclose(entropy.detach().numpy(), [3.037877, 3.037877], atol=1e-5)


def test_gaussian_log_prob_and_entropy_match_numpy():
    model = sharpened(BOX)
    obs = observations()
    mean = head_outputs(model, obs)
    actions = mean + np.random.default_rng(2).normal(size=mean.shape) * 1.5  # some well away from the mean
    log_p, entropy = model.log_prob_entropy(torch.from_numpy(obs), torch.tensor(actions, dtype=torch.float32))
    np.testing.assert_allclose(log_p.detach().numpy(), gaussian_log_prob(actions, mean, LOG_STD), rtol=1e-5, atol=1e-5)
    expected_entropy = gaussian_entropy_by_quadrature(LOG_STD)
    assert expected_entropy == pytest.approx(np.sum(0.5 * np.log(2 * np.pi * np.e) + LOG_STD), abs=1e-6)
    np.testing.assert_allclose(entropy.detach().numpy(), np.full(len(obs), expected_entropy), rtol=1e-5)


def test_gaussian_log_prob_matches_scipy():
    from scipy import stats  # the dev extra installs it: a missing reference fails, never skips
    model = sharpened(BOX)
    obs = observations()
    mean = head_outputs(model, obs)
    actions = mean + np.random.default_rng(3).normal(size=mean.shape)
    log_p, entropy = model.log_prob_entropy(torch.from_numpy(obs), torch.tensor(actions, dtype=torch.float32))
    scale = np.exp(LOG_STD)
    np.testing.assert_allclose(
        log_p.detach().numpy(), stats.norm.logpdf(actions, mean, scale).sum(-1), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(entropy.detach().numpy(), stats.norm.entropy(scale=scale).sum(), rtol=1e-5)


def test_gaussian_act_samples_with_the_head_std_and_returns_their_log_probs():
    model = sharpened(BOX)
    obs = np.repeat(observations(1), 20_000, axis=0)
    mean = head_outputs(model, obs[:1])[0]
    torch.manual_seed(4)
    with torch.no_grad():
        actions, log_p = model.act(torch.from_numpy(obs))
    a = actions.numpy().astype(np.float64)
    # std exp(-0.5) = 0.61 and exp(0.7) = 2.01: a sign error on log_std would swap them
    np.testing.assert_allclose(a.std(0), np.exp(LOG_STD), rtol=0.03)
    np.testing.assert_allclose(a.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(log_p.numpy(), gaussian_log_prob(a, mean, LOG_STD), rtol=1e-4, atol=1e-4)


def test_gaussian_greedy_act_is_the_mean():
    model = sharpened(BOX)
    obs = observations(8)
    with torch.no_grad():
        actions, log_p = model.act(torch.from_numpy(obs), greedy=True)
    np.testing.assert_allclose(actions.numpy(), head_outputs(model, obs), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(log_p.numpy(), np.full(8, -LOG_STD.sum() - LOG_2PI), atol=1e-5)


# ---------------------------------------------------------------- categorical head


def test_categorical_hand_computed():
    model = ActorCritic(OBS, DISCRETE, (4,))
    with torch.no_grad():
        model.policy[-1].weight.zero_()
        model.policy[-1].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
    obs = torch.zeros(3, 3)
    log_p, entropy = model.log_prob_entropy(obs, torch.tensor([0, 1, 2]))
    # log Z = log(1 + e + e^2) = 2.407606; log p = logit - log Z
    np.testing.assert_allclose(log_p.detach().numpy(), [-2.407606, -1.407606, -0.407606], atol=1e-5)
    # H = -sum p log p with p = (0.090031, 0.244728, 0.665241):
    # 0.090031 * 2.407606 + 0.244728 * 1.407606 + 0.665241 * 0.407606 = 0.832396
    np.testing.assert_allclose(entropy.detach().numpy(), np.full(3, 0.832396), atol=1e-5)
    with torch.no_grad():
        greedy, greedy_log_p = model.act(obs, greedy=True)
    np.testing.assert_array_equal(greedy.numpy(), [2, 2, 2])
    np.testing.assert_allclose(greedy_log_p.numpy(), np.full(3, -0.407606), atol=1e-5)


def test_categorical_log_prob_and_entropy_match_numpy():
    model = sharpened(DISCRETE)
    obs = observations()
    logits = head_outputs(model, obs)
    actions = np.random.default_rng(5).integers(0, 3, len(obs))
    log_p, entropy = model.log_prob_entropy(torch.from_numpy(obs), torch.from_numpy(actions))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(log_p.detach().numpy(), np.log(p[np.arange(len(obs)), actions]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(entropy.detach().numpy(), -(p * np.log(p)).sum(-1), rtol=1e-5, atol=1e-5)


def test_categorical_act_samples_follow_the_probabilities():
    model = ActorCritic(OBS, DISCRETE, (4,))
    with torch.no_grad():
        model.policy[-1].weight.zero_()
        model.policy[-1].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
    torch.manual_seed(6)
    with torch.no_grad():
        actions, log_p = model.act(torch.zeros(50_000, 3))
    p = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    np.testing.assert_allclose(np.bincount(actions.numpy(), minlength=3) / len(actions), p, atol=0.01)
    np.testing.assert_allclose(log_p.numpy(), np.log(p)[actions.numpy()], atol=1e-5)


# ---------------------------------------------------------------- the actors' NumPy copy


@pytest.mark.parametrize("action_space", [BOX, DISCRETE], ids=["box", "discrete"])
def test_numpy_policy_gives_the_torch_log_probs(action_space):
    model = sharpened(action_space, hidden=(16, 8))
    policy = NumpyPolicy(action_space, (16, 8), "tanh", seed=7)
    policy.load(codec.decode_named(encode_weights(model, 0).tensors))
    obs = observations(4096, seed=8)
    actions, log_probs = policy.act(obs)
    expected, _ = model.log_prob_entropy(torch.from_numpy(obs), torch.from_numpy(actions))
    np.testing.assert_allclose(log_probs, expected.detach().numpy(), rtol=1e-4, atol=1e-4)
    out = head_outputs(model, obs)
    if action_space is BOX:
        np.testing.assert_allclose(log_probs, gaussian_log_prob(actions, out, LOG_STD), rtol=1e-4, atol=1e-4)
        # its samples spread with the same std as the torch head's
        np.testing.assert_allclose((actions - out).std(0), np.exp(LOG_STD), rtol=0.05)
    else:
        log_softmax = out - np.log(np.exp(out).sum(-1, keepdims=True))
        np.testing.assert_allclose(log_probs, log_softmax[np.arange(len(obs)), actions], rtol=1e-4, atol=1e-4)


ATARI_OBS = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


def test_image_observations_get_the_nature_cnn_shared_by_both_heads():
    model = ActorCritic(ATARI_OBS, gym.spaces.Discrete(6), (64, 64))
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes["encoder.0.weight"] == (32, 4, 8, 8) and shapes["encoder.4.weight"] == (64, 64, 3, 3)
    assert shapes["encoder.7.weight"] == (512, 3136), "84 -> 20 -> 9 -> 7: 64 x 7 x 7 features"
    assert shapes["policy.0.weight"] == (6, 512) and shapes["value_net.0.weight"] == (1, 512)
    size = sum(p.numel() for p in model.parameters()) * 4
    assert 6.5e6 < size < 7e6, "the Nature CNN's ~6.7 MB: above gRPC's 4 MB default"


def test_pixels_are_scaled_by_1_over_255_inside_the_model():
    torch.manual_seed(0)
    model = ActorCritic(ATARI_OBS, gym.spaces.Discrete(6), (64,))
    white = torch.full((2, 4, 84, 84), 255, dtype=torch.uint8)
    expected = model.value_net(model.encoder(torch.ones(2, 4, 84, 84))).squeeze(-1)
    torch.testing.assert_close(model.value(white), expected)
    grey = torch.full((1, 4, 84, 84), 51, dtype=torch.uint8)
    torch.testing.assert_close(model.embed(grey), model.encoder(torch.full((1, 4, 84, 84), 0.2)))


def test_the_loss_trains_the_cnn_through_both_heads_from_uint8_rollouts():
    from relayrl.loss import LossConfig, actor_critic_loss
    from relayrl.rollout import Rollout

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = ActorCritic(ATARI_OBS, gym.spaces.Discrete(6), (64,))
    T, N = 3, 2
    rollout = Rollout(
        observations=rng.integers(0, 256, (T, N, 4, 84, 84), dtype=np.uint8),
        actions=rng.integers(0, 6, (T, N)),
        rewards=np.ones((T, N), np.float32),
        terminated=np.zeros((T, N), bool),
        truncated=np.zeros((T, N), bool),
        valid=np.ones((T, N), bool),
        log_probs=np.full((T, N), -1.8, np.float32),
        bootstrap_observations=rng.integers(0, 256, (N, 4, 84, 84), dtype=np.uint8),
        policy_version=0,
        episode_returns=np.zeros(0, np.float32),
        episode_lengths=np.zeros(0, np.uint32),
    )
    for value_coef, entropy_coef in ((1.0, 0.0), (0.0, 0.01)):  # the critic alone, then the actor alone
        model.zero_grad()
        terms = actor_critic_loss(model, [rollout], LossConfig(value_coef=value_coef, entropy_coef=entropy_coef))
        terms.loss.backward()
        grad = model.encoder[0].weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # the shared embedding gives exactly the values and log-probs of the two heads' own passes
    flat = torch.as_tensor(rollout.observations.reshape(T * N, 4, 84, 84))
    actions = torch.as_tensor(rollout.actions.reshape(-1))
    log_p, _ = model.log_prob_entropy(flat, actions)
    torch.testing.assert_close(model.log_prob_entropy_of(model.embed(flat), actions)[0], log_p)


@pytest.mark.parametrize(
    "space, options, message",
    [
        (ATARI_OBS, {"normalize_observations": True}, "normalisation covers vector observations"),
        (gym.spaces.Box(0, 255, (4, 20, 20), np.uint8), {"cnn": "nature"}, "at least 36x36"),
        (gym.spaces.Text(5), {}, "unsupported observation space"),
        (gym.spaces.Dict({"a": gym.spaces.Tuple([gym.spaces.Discrete(2)])}), {}, "nested Tuple"),
        (gym.spaces.Box(-1, 1, (3,)), {"net_arch": "pi=64;q=3"}, "expected shared"),
    ],
)
def test_unsupported_observation_spaces_are_refused(space, options, message):
    with pytest.raises(ValueError, match=message):
        ActorCritic(space, gym.spaces.Discrete(2), (8,), **options)
