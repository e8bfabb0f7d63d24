"""The MultiDiscrete and MultiBinary heads against NumPy formulas, the NumPy policy against the torch model on
every observation kind it serves, and the models each space gets (CNN choice, channels-last, net_arch, a user's
extractor)."""

from collections import OrderedDict

import gymnasium as gym
import numpy as np
import pytest
import torch

from relayrl import codec, heads
from relayrl.model import ActorCritic, as_tensors
from relayrl.numpy_policy import NumpyPolicy
from relayrl.wire import encode_weights

VECTOR = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
MULTI_DISCRETE = gym.spaces.MultiDiscrete([3, 2, 4])
MULTI_BINARY = gym.spaces.MultiBinary(4)


def log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def test_multi_categorical_log_prob_and_entropy_match_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(32, 9)) * 2
    actions = np.stack([rng.integers(0, n, 32) for n in (3, 2, 4)], axis=1)
    log_p, entropy = heads.categorical(torch.as_tensor(logits), [3, 2, 4], torch.as_tensor(actions))
    want_log_p, want_entropy = np.zeros(32), np.zeros(32)
    for block, (start, n) in enumerate([(0, 3), (3, 2), (5, 4)]):
        lp = log_softmax(logits[:, start : start + n])
        want_log_p += lp[np.arange(32), actions[:, block]]
        want_entropy += -(np.exp(lp) * lp).sum(axis=1)
    np.testing.assert_allclose(log_p.numpy(), want_log_p, rtol=1e-6)
    np.testing.assert_allclose(entropy.numpy(), want_entropy, rtol=1e-6)
    assert np.all(want_entropy > 0)


def test_bernoulli_log_prob_and_entropy_match_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(32, 4)) * 2
    bits = rng.integers(0, 2, (32, 4))
    log_p, entropy = heads.bernoulli(torch.as_tensor(logits), torch.as_tensor(bits))
    p = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(log_p.numpy(), np.log(np.where(bits == 1, p, 1 - p)).sum(axis=1), rtol=1e-6)
    np.testing.assert_allclose(entropy.numpy(), -(p * np.log(p) + (1 - p) * np.log(1 - p)).sum(axis=1), rtol=1e-6)


def test_sampled_heads_follow_their_probabilities():
    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 1.0, 2.0, 1.5, -1.5]]).repeat(50_000, 1)
    actions, log_p = heads.categorical_sample(logits, [3, 2])
    p0 = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    np.testing.assert_allclose(np.bincount(actions[:, 0].numpy(), minlength=3) / 50_000, p0, atol=0.01)
    assert abs(actions[:, 1].float().mean().item() - 1 / (1 + np.exp(3.0))) < 0.01  # softmax([1.5, -1.5])[1]
    bits, _ = heads.bernoulli_sample(torch.tensor([[2.0, -1.0]]).repeat(50_000, 1))
    np.testing.assert_allclose(bits.float().mean(0).numpy(), 1 / (1 + np.exp(-np.array([2.0, -1.0]))), atol=0.01)
    assert heads.bernoulli_sample(torch.tensor([[2.0, -1.0]]), greedy=True)[0].tolist() == [[1, 0]]


def sharpened(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("value_net"):
                p.add_(torch.randn_like(p) * 0.5)
    return model


DICT = gym.spaces.Dict(OrderedDict(
    [("position", gym.spaces.Box(-5.0, 5.0, (2, 2), np.float32)), ("goal", gym.spaces.Discrete(4)),
     ("flags", gym.spaces.MultiBinary(3)), ("speed", gym.spaces.Box(-1.0, 1.0, (1,), np.float64))]
))
CASES = [
    (gym.spaces.Box(-1, 1, (5, 5), np.float32), gym.spaces.Discrete(5), ""),  # highway-env's shape
    (gym.spaces.Discrete(16), gym.spaces.Discrete(4), ""),  # FrozenLake: one-hot
    (gym.spaces.MultiDiscrete([3, 5]), MULTI_DISCRETE, "shared=16;pi=8;vf=8"),
    (VECTOR, MULTI_BINARY, "pi=12"),
    (DICT, gym.spaces.Box(-1, 1, (2,), np.float32), "pi=16,8;vf=4"),
]


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("obs_space, act_space, net_arch", CASES)
def test_numpy_policy_is_the_torch_policy_on_every_space_it_serves(obs_space, act_space, net_arch, normalize):
    if normalize and isinstance(obs_space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
        pytest.skip("nothing to normalise: one-hot observations")
    torch.manual_seed(0)
    model = sharpened(ActorCritic(obs_space, act_space, (16, 16), "relu", net_arch=net_arch,
                                  normalize_observations=normalize))
    obs_space.seed(3)
    samples = [obs_space.sample() for _ in range(256)]
    if isinstance(obs_space, gym.spaces.Dict):
        obs = {key: np.stack([s[key] for s in samples]) for key in obs_space.spaces}
    else:
        obs = np.stack(samples)
    if normalize:
        model.update_observation_stats(obs)
        assert float(model._statistic("count", "position" if isinstance(obs_space, gym.spaces.Dict) else None)) == 256
    policy = NumpyPolicy(act_space, (16, 16), "relu", seed=1, normalize=normalize, observation_space=obs_space,
                         net_arch=net_arch)
    policy.load(codec.decode_named(encode_weights(model, 0).tensors))
    actions, log_probs = policy.act(obs)
    if not isinstance(act_space, gym.spaces.Box):  # Gaussian samples may lie outside the Box (clipped for the env)
        assert act_space.contains(actions[0].astype(act_space.dtype))
    expected, _ = model.log_prob_entropy(as_tensors(obs), torch.as_tensor(actions))
    np.testing.assert_allclose(log_probs, expected.detach().numpy(), rtol=1e-4, atol=1e-4)
    model.normalize_observations = False  # the statistics matter: without them the log-probs differ
    if normalize:
        unnormalised, _ = model.log_prob_entropy(as_tensors(obs), torch.as_tensor(actions))
        assert not np.allclose(log_probs, unnormalised.detach().numpy(), atol=1e-3)


def test_net_arch_builds_a_shared_trunk_and_separate_heads():
    model = ActorCritic(VECTOR, gym.spaces.Discrete(2), net_arch="shared=32;pi=16;vf=8,8")
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert shapes["shared.0.weight"] == (32, 3)
    assert shapes["policy.0.weight"] == (16, 32) and shapes["policy.2.weight"] == (2, 16)
    assert shapes["value_net.0.weight"] == (8, 32) and shapes["value_net.4.weight"] == (1, 8)
    # the trunk's gradient comes from both heads' losses
    obs = torch.randn(4, 3)
    model.value(obs).sum().backward()
    assert model.shared[0].weight.grad.abs().sum() > 0


def test_small_images_get_minatar_s_cnn_and_channels_last_is_the_transposed_first():
    last = gym.spaces.Box(0, 1, (10, 10, 4), bool)
    first = gym.spaces.Box(0, 1, (4, 10, 10), bool)
    torch.manual_seed(0)
    model_last = ActorCritic(last, gym.spaces.Discrete(3))
    model_first = ActorCritic(first, gym.spaces.Discrete(3))
    shapes = {name: tuple(t.shape) for name, t in model_last.state_dict().items()}
    assert shapes["encoder.0.weight"] == (16, 4, 3, 3) and shapes["encoder.3.weight"] == (128, 16 * 8 * 8)
    model_first.load_state_dict(model_last.state_dict())
    grid = torch.rand(5, 10, 10, 4) > 0.7
    torch.testing.assert_close(model_last.value(grid), model_first.value(grid.permute(0, 3, 1, 2)))
    # a grid that differs from its own transpose: reading channels-last as channels-first would not match
    assert not torch.allclose(model_last.value(grid), model_first.value(grid.reshape(5, 4, 10, 10)))


@pytest.mark.parametrize("cnn, width", [("nature", 512), ("impala", 256), ("small", 128)])
def test_each_cnn_can_be_chosen(cnn, width):
    model = ActorCritic(gym.spaces.Box(0, 255, (64, 64, 3), np.uint8), gym.spaces.Discrete(4), cnn=cnn)
    assert model.encoder.features_dim == width
    obs = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    actions, log_p = model.act(obs)
    assert actions.shape == (2,) and torch.all(log_p <= 0)


def test_a_dict_with_an_image_key_combines_a_cnn_and_flat_keys():
    space = gym.spaces.Dict({"camera": gym.spaces.Box(0, 255, (12, 12, 3), np.uint8), "goal": gym.spaces.Discrete(5),
                             "state": gym.spaces.Box(-1, 1, (4,))})
    model = ActorCritic(space, gym.spaces.Box(-1, 1, (2,)), normalize_observations=True)
    assert model.encoder.features_dim == 128 + 5 + 4
    assert sorted(n for n in model.state_dict() if n.startswith("obs_")) == [
        "obs_count_state", "obs_mean_state", "obs_var_state"
    ]
    batch = {key: torch.as_tensor(np.stack([sub.sample() for _ in range(3)])) for key, sub in space.spaces.items()}
    assert model.act(batch)[0].shape == (3, 2)


def test_a_users_extractor_is_checked_naming_its_class():
    with pytest.raises(ValueError, match=r"tests.space_envs:Liar: gave \(2, 16\).*expected \(2, 7\)"):
        import tests.space_envs as module

        class Liar(module.TinyExtractor):
            def __init__(self, space):
                super().__init__(space)
                self.features_dim = 7

        module.Liar = Liar
        try:
            ActorCritic(DICT, gym.spaces.Discrete(2), features_extractor="tests.space_envs:Liar")
        finally:
            del module.Liar
    with pytest.raises(ImportError, match="no_such_module"):
        ActorCritic(DICT, gym.spaces.Discrete(2), features_extractor="no_such_module:Net")
    model = ActorCritic(DICT, gym.spaces.Discrete(2), features_extractor="tests.space_envs:TinyExtractor",
                        features_kwargs='{"width": 12}')
    assert model.encoder.features_dim == 12 and model.state_dict()["policy.0.weight"].shape == (64, 12)


@pytest.mark.parametrize("act_space", [MULTI_DISCRETE, MULTI_BINARY, gym.spaces.Box(-1, 1, (2,), np.float32)])
def test_the_models_actions_have_the_spaces_shape_and_their_own_log_probability(act_space):
    """ActorCritic.act for every head: actions shaped as the space's elements, the log-probability of the action
    it returned (as the loss scores it), and greedy actions the modes, the same each call."""
    torch.manual_seed(0)
    model = sharpened(ActorCritic(VECTOR, act_space, (16,)))
    obs = torch.randn(64, 3)
    with torch.no_grad():
        embedded = model.embed(obs)
        for greedy in (False, True):
            actions, log_p = model.act(obs, greedy)
            assert actions.shape == (64, *act_space.shape)
            if not isinstance(act_space, gym.spaces.Box):
                assert all(act_space.contains(a) for a in actions.numpy().astype(act_space.dtype))
            scored = model.log_prob_entropy_of(embedded, actions)[0]
            np.testing.assert_allclose(log_p.numpy(), scored.numpy(), rtol=1e-5, atol=1e-5)
        assert torch.equal(model.act(obs, greedy=True)[0], actions)
        sampled = torch.stack([model.act(obs)[0] for _ in range(5)])
        assert not all(torch.equal(s, actions) for s in sampled), "sampling is not the mode"


def test_a_bits_greedy_value_at_even_odds_is_zero_and_its_log_probability_is_the_actions():
    """The mode of a Bernoulli at P(1) = 0.5 is 0, as SB3's (torch.round of 0.5); bernoulli_sample returns the
    log-probability of the bits it chose, not their entropy."""
    logits = torch.tensor([[0.0, 3.0, -3.0]])
    bits, log_p = heads.bernoulli_sample(logits, greedy=True)
    assert bits.tolist() == [[0, 1, 0]]
    assert log_p.item() == pytest.approx(float(heads.bernoulli(logits, bits)[0]))
    assert log_p.item() == pytest.approx(np.log(0.5) + 2 * np.log(1 / (1 + np.exp(-3.0))), rel=1e-5)
