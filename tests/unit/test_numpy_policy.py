"""The actor's NumPy policy is the learner's ActorCritic policy: same log-probs, same distribution."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from relayrl import codec
from relayrl.model import ActorCritic
from relayrl.numpy_policy import NumpyPolicy
from relayrl.wire import encode_weights

SPACES = [
    (gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(3)),
    (gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Box(-2, 2, (2,), np.float32)),
]


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("obs_space, act_space", SPACES)
def test_log_probs_match_the_torch_model(obs_space, act_space, activation):
    torch.manual_seed(0)
    model = ActorCritic(obs_space, act_space, (32, 16), activation)
    with torch.no_grad():
        for p in model.policy.parameters():  # bigger weights than the 0.01-gain init: a sharper policy
            p.add_(torch.randn_like(p) * 0.5)
        if not model.discrete:
            model.log_std.fill_(-0.3)
    policy = NumpyPolicy(act_space, (32, 16), activation, seed=1)
    policy.load(codec.decode_named(encode_weights(model, 0).tensors))
    obs = np.random.default_rng(2).normal(size=(256, obs_space.shape[0])).astype(np.float32)
    actions, log_probs = policy.act(obs)
    expected, _ = model.log_prob_entropy(torch.from_numpy(obs), torch.from_numpy(actions))
    np.testing.assert_allclose(log_probs, expected.detach().numpy(), rtol=1e-4, atol=1e-4)


def test_discrete_samples_follow_the_probabilities():
    obs_space, act_space = SPACES[0]
    torch.manual_seed(0)
    model = ActorCritic(obs_space, act_space, (8,))
    with torch.no_grad():
        model.policy[-1].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
        model.policy[-1].weight.zero_()
    policy = NumpyPolicy(act_space, (8,), "tanh", seed=3)
    policy.load(codec.decode_named(encode_weights(model, 0).tensors))
    actions, _ = policy.act(np.zeros((100_000, 4), np.float32))
    expected = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    np.testing.assert_allclose(np.bincount(actions, minlength=3) / len(actions), expected, atol=0.01)


def test_missing_layers_are_refused():
    policy = NumpyPolicy(gym.spaces.Discrete(2), (8,), "tanh", seed=0)
    with pytest.raises(codec.CodecError, match="missing"):
        policy.load({"policy.0.weight": np.zeros((8, 4), np.float32)})


def test_an_actor_that_sends_trajectories_never_imports_torch():
    code = "import sys, actor_service.main, actor_service.policies; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
