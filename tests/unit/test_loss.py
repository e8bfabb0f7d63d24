"""The actor-critic loss against a direct NumPy computation from the model's own outputs.

Only the forward passes (logits or Gaussian means, values) come from the model; returns, advantages,
their normalisation, log-probabilities, entropies, importance ratios and the loss terms are recomputed
in NumPy (tests/references.py holds GAE as the paper's explicit sum).
"""

import dataclasses
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

from relayrl.loss import LossConfig, actor_critic_loss
from relayrl.model import ActorCritic
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, random_rollout
from tests.references import gae_reference

BOX = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
LOG_STD = [-0.5, 0.7]  # non-zero, so that the sign of log_std matters


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (16, 16))


def sharp_model(action_space, seed=0):
    """A model whose policy depends on the observation (the 0.01-gain init is nearly uniform)."""
    torch.manual_seed(seed)
    m = ActorCritic(CARTPOLE_OBS, action_space, (16, 16))
    with torch.no_grad():
        for p in m.policy.parameters():
            p.add_(torch.randn_like(p) * 0.3)
        if not m.discrete:
            m.log_std.copy_(torch.tensor(LOG_STD))
    return m


def forward(model, r):
    """What the model itself computes, with no grad: values [T, N], bootstrap values [N], policy outputs."""
    T, N = r.rewards.shape
    with torch.no_grad():
        obs = torch.as_tensor(r.observations.reshape(T * N, -1))
        v = model.value(obs).numpy().astype(np.float64).reshape(T, N)
        vb = model.value(torch.as_tensor(r.bootstrap_observations)).numpy().astype(np.float64)
        out = model.policy(obs).numpy().astype(np.float64)
    return v, vb, out


def log_prob_entropy_np(model, r, out):
    T, N = r.rewards.shape
    if model.discrete:
        logp_all = out - np.log(np.exp(out).sum(-1, keepdims=True))
        logp = logp_all[np.arange(T * N), r.actions.reshape(-1)]
        entropy = -(np.exp(logp_all) * logp_all).sum(-1)
    else:
        log_std = model.log_std.detach().numpy().astype(np.float64)
        std = np.exp(log_std)
        a = r.actions.reshape(T * N, -1)
        logp = (-0.5 * ((a - out) / std) ** 2 - np.log(std * np.sqrt(2 * np.pi))).sum(-1)
        entropy = np.full(T * N, np.sum(0.5 * np.log(2 * np.pi * np.e * std**2)))
    return logp.reshape(T, N), entropy.reshape(T, N)


def reference_loss(model, r, cfg):
    """Mnih et al.'s loss (with GAE, optional advantage normalisation and the truncated importance ratio
    min(1, pi/mu)) written out in NumPy over valid transitions."""
    v, vb, out = forward(model, r)
    logp, entropy = log_prob_entropy_np(model, r, out)
    next_values = np.concatenate([v[1:], vb[None]])
    rewards = r.rewards.astype(np.float64)
    A = gae_reference(rewards, v, next_values, r.terminated, r.truncated, cfg.gamma, cfg.gae_lambda)
    R = A + v
    m = r.valid
    if cfg.normalize_advantage:
        A = (A - A[m].mean()) / (A[m].std() + 1e-8)  # population std over valid transitions
    rho = np.minimum(1.0, np.exp(logp - r.log_probs))
    policy = -(rho * A * logp)[m].mean()
    value = ((R - v) ** 2)[m].mean()
    ent = entropy[m].mean()
    return policy + cfg.value_coef * value - cfg.entropy_coef * ent, policy, value, ent


def box_rollout(T, N, seed):
    """random_rollout with 2-D float actions."""
    r = random_rollout(T=T, N=N, seed=seed)
    actions = np.random.default_rng(seed + 100).normal(size=(T, N, 2)).astype(np.float32)
    return dataclasses.replace(r, actions=actions)


def off_policy(model, r, seed):
    """Behaviour log-probs that differ from the model's by up to +-1: some ratios below 1, some clipped."""
    v, vb, out = forward(model, r)
    logp, _ = log_prob_entropy_np(model, r, out)
    shift = np.random.default_rng(seed).uniform(-1.0, 1.0, size=logp.shape)
    return dataclasses.replace(r, log_probs=(logp + shift).astype(np.float32))


def assert_terms_match(terms, reference):
    total, policy, value, ent = reference
    assert terms.policy_loss == pytest.approx(policy, rel=1e-4, abs=1e-5)
    assert terms.value_loss == pytest.approx(value, rel=1e-4, abs=1e-5)
    assert terms.entropy == pytest.approx(ent, rel=1e-4, abs=1e-5)
    assert terms.loss.item() == pytest.approx(total, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_loss_matches_numpy_reference(model, seed):
    cfg = LossConfig(gamma=0.9, gae_lambda=1.0, value_coef=0.5, entropy_coef=0.01)
    r = random_rollout(T=6, N=4, seed=seed)
    terms = actor_critic_loss(model, [r], cfg)
    assert_terms_match(terms, reference_loss(model, r, cfg))


@pytest.mark.parametrize("head", ["discrete", "box"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("gae_lambda", [1.0, 0.9])
@pytest.mark.parametrize("seed", range(2))
def test_loss_matches_numpy_reference_off_policy(head, normalize, gae_lambda, seed):
    """Invalid transitions, behaviour log-probs away from the current policy, GAE and normalisation at once."""
    m = sharp_model(CARTPOLE_ACT if head == "discrete" else BOX, seed)
    r = random_rollout(T=8, N=5, seed=seed) if head == "discrete" else box_rollout(8, 5, seed)
    r = off_policy(m, r, seed)
    assert not r.valid.all() and (r.terminated | r.truncated)[:-1].any()
    cfg = LossConfig(
        gamma=0.9, gae_lambda=gae_lambda, value_coef=0.25, entropy_coef=0.05, normalize_advantage=normalize
    )
    terms = actor_critic_loss(m, [r], cfg)
    reference = reference_loss(m, r, cfg)
    assert abs(reference[1]) > 1e-3, "a policy loss near 0 would not show a sign error"
    assert_terms_match(terms, reference)


def test_invalid_transitions_do_not_count(model):
    """The autoreset step's action and reward are junk: changing them changes nothing."""
    r = random_rollout(T=6, N=4, seed=1)
    assert not r.valid.all()
    other = dataclasses.replace(r, actions=r.actions.copy(), rewards=r.rewards.copy())
    other.actions[~r.valid] = 1 - other.actions[~r.valid]
    other.rewards[~r.valid] = 1000.0
    a = actor_critic_loss(model, [r], LossConfig()).loss.item()
    b = actor_critic_loss(model, [other], LossConfig()).loss.item()
    assert a == pytest.approx(b, abs=1e-6)


def test_truncation_and_termination_differ_by_the_bootstrap(model):
    r = random_rollout(T=4, N=1, seed=2)
    r.terminated[:] = False
    r.truncated[:] = False
    r.valid[:] = True
    r.terminated[3, 0] = True  # ends at the last step: bootstrap obs is the final observation
    trunc = dataclasses.replace(r, terminated=np.zeros_like(r.terminated), truncated=r.terminated.copy())
    cfg = LossConfig(gamma=0.9)
    a = actor_critic_loss(model, [r], cfg)
    b = actor_critic_loss(model, [trunc], cfg)
    assert a.value_loss != pytest.approx(b.value_loss)
    assert a.value_loss == pytest.approx(reference_loss(model, r, cfg)[2], rel=1e-4)
    assert b.value_loss == pytest.approx(reference_loss(model, trunc, cfg)[2], rel=1e-4)


def test_batched_rollouts_equal_one_wide_rollout(model):
    """Two actors' rollouts side by side give the loss of one rollout with all their environments."""
    r1, r2 = random_rollout(T=5, N=2, seed=3), random_rollout(T=5, N=3, seed=4)
    wide = dataclasses.replace(
        r1,
        **{
            f: np.concatenate([getattr(r1, f), getattr(r2, f)], axis=1)
            for f in ("observations", "actions", "rewards", "terminated", "truncated", "valid", "log_probs")
        },
        bootstrap_observations=np.concatenate([r1.bootstrap_observations, r2.bootstrap_observations]),
    )
    cfg = LossConfig(entropy_coef=0.01)
    assert actor_critic_loss(model, [r1, r2], cfg).loss.item() == pytest.approx(
        actor_critic_loss(model, [wide], cfg).loss.item(), rel=1e-5
    )


def dict_rollout(r):
    """CartPole's rollout with its observation split into a Dict of two keys (position and angle pairs)."""
    def split(obs):
        return {"cart": obs[..., :2].copy(), "pole": obs[..., 2:].copy()}

    return dataclasses.replace(r, observations=split(r.observations),
                               bootstrap_observations=split(r.bootstrap_observations))


def test_dict_observations_batch_key_by_key_as_one_wide_rollout():
    """Dict observations go through the loss key by key: two actors' rollouts side by side give the loss of one
    rollout with all their environments, and one rollout alone computes."""
    space = gym.spaces.Dict({"cart": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
                             "pole": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)})
    torch.manual_seed(0)
    model = ActorCritic(space, CARTPOLE_ACT, (16,))
    r1, r2 = random_rollout(T=5, N=2, seed=3), random_rollout(T=5, N=3, seed=4)
    wide = dataclasses.replace(
        r1,
        **{f: np.concatenate([getattr(r1, f), getattr(r2, f)], axis=1)
           for f in ("observations", "actions", "rewards", "terminated", "truncated", "valid", "log_probs")},
        bootstrap_observations=np.concatenate([r1.bootstrap_observations, r2.bootstrap_observations]),
    )
    cfg = LossConfig(entropy_coef=0.01)
    pair = actor_critic_loss(model, [dict_rollout(r1), dict_rollout(r2)], cfg).loss.item()
    assert pair == pytest.approx(actor_critic_loss(model, [dict_rollout(wide)], cfg).loss.item(), rel=1e-5)
    one = actor_critic_loss(model, [dict_rollout(r1)], cfg).loss.item()
    assert np.isfinite(one) and one != pytest.approx(pair)


def test_gradient_flows_to_both_heads(model):
    terms = actor_critic_loss(model, [random_rollout(seed=5)], LossConfig())
    terms.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_on_policy_data_has_importance_one(model):
    """With the behaviour log-probs equal to the model's own, the loss is Mnih et al.'s unweighted one."""
    r = random_rollout(T=5, N=3, seed=7)
    T, N = r.rewards.shape
    with torch.no_grad():
        logp, _ = model.log_prob_entropy(torch.as_tensor(r.observations.reshape(T * N, -1)),
                                         torch.as_tensor(r.actions.reshape(-1)))
    on_policy = dataclasses.replace(r, log_probs=logp.numpy().reshape(T, N))
    stale = dataclasses.replace(r, log_probs=logp.numpy().reshape(T, N) + 1.0)  # mu > pi: ratio e^-1
    cfg = LossConfig()
    a = actor_critic_loss(model, [on_policy], cfg).policy_loss
    b = actor_critic_loss(model, [stale], cfg).policy_loss
    assert b == pytest.approx(a * np.exp(-1.0), rel=1e-4)


def one_step_rollout(model, obs, actions, rewards):
    """N one-step episodes from the same observation, all terminated, on-policy (ratio 1)."""
    N = len(rewards)
    observations = np.tile(obs, (1, N, 1)).astype(np.float32)
    actions = np.asarray(actions)[None]
    with torch.no_grad():
        logp, _ = model.log_prob_entropy(torch.as_tensor(observations[0]), torch.as_tensor(actions[0]))
    r = random_rollout(T=1, N=N)
    return dataclasses.replace(
        r,
        observations=observations,
        actions=actions,
        rewards=np.asarray(rewards, np.float32)[None],
        terminated=np.ones((1, N), bool),
        truncated=np.zeros((1, N), bool),
        valid=np.ones((1, N), bool),
        log_probs=logp.numpy()[None],
    )


def sgd_step(model, r, cfg, lr=0.05):
    model.zero_grad()
    actor_critic_loss(model, [r], cfg).loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(lr * p.grad)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("favoured", [0, 1])
def test_one_sgd_step_makes_the_advantaged_action_more_likely(normalize, favoured):
    torch.manual_seed(0)
    m = ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (16,))
    obs = np.random.default_rng(0).normal(size=(1, 1, 4))
    actions = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    rewards = np.where(actions == favoured, 10.0, -10.0)  # far beyond V(s): the sign of A_t is that of r_t
    r = one_step_rollout(m, obs, actions, rewards)
    s = torch.as_tensor(obs[0], dtype=torch.float32)
    a = torch.tensor([favoured])
    before = m.log_prob_entropy(s, a)[0].exp().item()
    sgd_step(m, r, LossConfig(gamma=0.9, value_coef=0.0, normalize_advantage=normalize))
    after = m.log_prob_entropy(s, a)[0].exp().item()
    assert after > before + 1e-3


@pytest.mark.parametrize("normalize", [False, True])
def test_one_sgd_step_moves_the_gaussian_mean_towards_the_advantaged_action(normalize):
    m = sharp_model(BOX)
    obs = np.random.default_rng(1).normal(size=(1, 1, 4))
    s = torch.as_tensor(obs[0], dtype=torch.float32)
    with torch.no_grad():
        mean = m.policy(s)[0].numpy()
    step = np.array([0.5, -0.5], np.float32)
    actions = np.stack([mean + step, mean - step] * 4)  # +step is rewarded, -step is punished
    rewards = np.array([10.0, -10.0] * 4)
    r = one_step_rollout(m, obs, actions, rewards)
    sgd_step(m, r, LossConfig(gamma=0.9, value_coef=0.0, normalize_advantage=normalize), lr=0.01)
    with torch.no_grad():
        moved = m.policy(s)[0].numpy() - mean
    assert moved[0] > 1e-3 and moved[1] < -1e-3


@pytest.mark.parametrize("head", ["discrete", "box"])
def test_the_entropy_bonus_raises_the_entropy(head):
    """Zero advantages (r_t = V(s_t) on terminal steps): only the entropy term moves the policy."""
    m = sharp_model(CARTPOLE_ACT if head == "discrete" else BOX)
    obs = np.random.default_rng(2).normal(size=(1, 1, 4))
    s = torch.as_tensor(obs[0], dtype=torch.float32)
    with torch.no_grad():
        value = m.value(s).item()
    actions = [0, 1, 1, 0] if head == "discrete" else np.random.default_rng(3).normal(size=(4, 2)).astype(np.float32)
    r = one_step_rollout(m, obs, actions, [value] * 4)
    cfg = LossConfig(gamma=0.9, value_coef=0.0, entropy_coef=0.1)
    assert actor_critic_loss(m, [r], cfg).policy_loss == pytest.approx(0.0, abs=1e-6)
    before = actor_critic_loss(m, [r], cfg).entropy
    sgd_step(m, r, cfg, lr=0.1)
    assert actor_critic_loss(m, [r], cfg).entropy > before + 1e-4


def test_loss_config_is_read_by_name_from_the_learner_config_and_the_run_config_message():
    from learner_service.config import LearnerConfig
    from relayrl.v1 import relayrl_pb2 as pb

    settings = dict(gamma=0.9, gae_lambda=0.95, value_coef=0.25, entropy_coef=0.01, normalize_advantage=True)
    expected = LossConfig(**settings)
    assert LossConfig.of(LearnerConfig(**settings)) == expected
    message = pb.RunConfig(**settings)
    assert LossConfig.of(message).gae_lambda == pytest.approx(0.95) and LossConfig.of(message).entropy_coef == \
        pytest.approx(0.01) and LossConfig.of(message).normalize_advantage


def test_explained_variance_over_valid_steps():
    from relayrl.loss import explained_variance

    def ev(values, returns, valid) -> float:
        return float(explained_variance(*(torch.as_tensor(x, dtype=torch.float64) for x in (values, returns, valid))))

    returns = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    valid = np.array([True, True, True, True, False])  # the invalid step must not count
    assert ev(returns.copy(), returns, valid) == 1.0
    assert ev(np.full(5, 2.5), returns, valid) == pytest.approx(0.0)
    assert ev(np.array([4.0, 3.0, 2.0, 1.0, 0.0]), returns, valid) == pytest.approx(-3.0)
    assert np.isnan(ev(np.zeros(5), np.ones(5), np.ones(5, bool)))
    assert np.isnan(ev(np.zeros(5), np.arange(5.0), np.zeros(5, bool)))  # no valid step


def test_num_samples_counts_every_transition_of_every_rollout(model):
    """The learner's samples counter (relayrl_samples_total) counts what was sent, invalid steps included."""
    a, b = random_rollout(T=6, N=4, seed=0), random_rollout(T=6, N=3, seed=1)
    assert not a.valid.all() and not b.valid.all()
    cfg = LossConfig(gamma=0.9, gae_lambda=1.0, value_coef=0.5, entropy_coef=0.01)
    assert actor_critic_loss(model, [a], cfg).num_samples == a.valid.size == 24
    assert actor_critic_loss(model, [a, b], cfg).num_samples == a.valid.size + b.valid.size == 42


def test_a_batch_with_one_valid_transition_is_its_mean_over_one(model):
    r = random_rollout(T=3, N=2, seed=4)
    valid = np.zeros_like(r.valid)
    valid[1, 1] = True
    r = dataclasses.replace(r, valid=valid)
    cfg = LossConfig(gamma=0.9, gae_lambda=1.0, value_coef=0.5, entropy_coef=0.01)
    assert_terms_match(actor_critic_loss(model, [r], cfg), reference_loss(model, r, cfg))


def read_only(r):
    """A rollout as decoded from the wire: its arrays view the message's bytes and cannot be written."""
    fields = {f.name: getattr(r, f.name) for f in dataclasses.fields(r)}
    for value in fields.values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return r


def test_read_only_rollouts_give_the_same_loss_without_warnings(model):
    """torch warns on (and may write through) a read-only array: the loss copies a lone read-only rollout."""
    cfg = LossConfig(gamma=0.9, gae_lambda=1.0, value_coef=0.5, entropy_coef=0.01)
    writable = actor_critic_loss(model, [random_rollout(T=6, N=4, seed=2)], cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        terms = actor_critic_loss(model, [read_only(random_rollout(T=6, N=4, seed=2))], cfg)
    assert terms.loss.item() == writable.loss.item()


def test_overflowing_rewards_give_a_non_finite_loss_without_numpy_warnings(model):
    """Rewards near float32's maximum overflow the returns: the loss is non-finite and the step is refused
    where it is taken (clip_and_step), with no RuntimeWarning per batch in the learner's log."""
    r = random_rollout(T=6, N=4, seed=0)
    ended = np.zeros_like(r.terminated)
    ended[1] = True  # after four steps whose return overflowed: 0 x inf, an invalid operation
    valid = np.ones_like(r.valid)
    valid[2] = False
    r = dataclasses.replace(r, rewards=np.full_like(r.rewards, 3e38), terminated=ended,
                            truncated=np.zeros_like(ended), valid=valid)  # returns overflow float32 in two steps
    cfg = LossConfig(gamma=0.99, gae_lambda=0.95, value_coef=0.5, entropy_coef=0.01, normalize_advantage=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        terms = actor_critic_loss(model, [r], cfg)
    assert not np.isfinite(terms.loss.item())

    # a critic whose output overflowed already: inf - inf and 0 x inf in the returns, again quietly
    with torch.no_grad():
        for p in model.value_net.parameters():
            p.fill_(float("inf"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        terms = actor_critic_loss(model, [random_rollout(T=6, N=4, seed=0)], cfg)
    assert not np.isfinite(terms.loss.item())


def test_the_loss_reports_the_critics_explained_variance(model):
    r = random_rollout(T=6, N=4, seed=5)
    cfg = LossConfig(gamma=0.9, gae_lambda=0.95, value_coef=0.5, entropy_coef=0.01)
    terms = actor_critic_loss(model, [r], cfg)
    v, vb, _ = forward(model, r)
    A = gae_reference(r.rewards.astype(np.float64), v, np.concatenate([v[1:], vb[None]]), r.terminated, r.truncated,
                      cfg.gamma, cfg.gae_lambda)
    returns, valid = A + v, r.valid
    expected = 1.0 - np.var((returns - v)[valid]) / np.var(returns[valid])
    assert terms.explained_variance == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_explained_variance_takes_any_shape_small_variances_and_degenerate_batches_quietly():
    from relayrl.loss import explained_variance

    def ev(values, returns, valid, dtype=torch.float64) -> float:
        return float(explained_variance(*(torch.as_tensor(x, dtype=dtype) for x in (values, returns, valid))))

    returns = np.array([[0.1, 0.2], [0.3, 0.4]])  # [T, N], a variance far below 1
    assert ev(returns.copy(), returns, np.ones((2, 2), bool)) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN, never a RuntimeWarning per batch in the learner's log
        assert np.isnan(ev(returns, returns, np.zeros((2, 2), bool)))  # nothing valid
        # returns that do not vary explain nothing, whatever the values: NaN, not 1 - x / 0 = -inf
        assert np.isnan(ev(np.array([0.0, 1.0]), np.array([2.0, 2.0]), np.ones(2, bool)))
        huge = np.array([3e38, -3e38], np.float32)  # an overflowing batch
        assert np.isnan(ev(np.zeros(2, np.float32), huge, np.ones(2, bool), dtype=torch.float32))
