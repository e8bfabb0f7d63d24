"""The actor-critic loss against a direct NumPy computation from the model's own outputs."""

import dataclasses

import numpy as np
import pytest
import torch

from relayrl.loss import LossConfig, actor_critic_loss
from relayrl.model import ActorCritic
from relayrl.returns import n_step_returns
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, random_rollout


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (16, 16))


def reference_loss(model, r, cfg):
    """Mnih et al.'s loss written out in NumPy over valid transitions."""
    T, N = r.rewards.shape
    with torch.no_grad():
        v = model.value(torch.as_tensor(r.observations.reshape(T * N, -1))).numpy().reshape(T, N)
        vb = model.value(torch.as_tensor(r.bootstrap_observations)).numpy()
        logits = model.policy(torch.as_tensor(r.observations.reshape(T * N, -1))).numpy()
    logp_all = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    logp = logp_all[np.arange(T * N), r.actions.reshape(-1)].reshape(T, N)
    entropy = -(np.exp(logp_all) * logp_all).sum(-1).reshape(T, N)
    next_values = np.concatenate([v[1:], vb[None]])
    ended = r.terminated | r.truncated
    R = n_step_returns(r.rewards.astype(np.float64), next_values, r.terminated, ended, cfg.gamma)
    A = R - v
    rho = np.minimum(1.0, np.exp(logp - r.log_probs))  # truncated importance ratio to the behaviour policy
    m = r.valid
    policy = -(rho * A * logp)[m].mean()
    value = ((R - v) ** 2)[m].mean()
    ent = entropy[m].mean()
    return policy + cfg.value_coef * value - cfg.entropy_coef * ent, policy, value, ent


@pytest.mark.parametrize("seed", range(3))
def test_loss_matches_numpy_reference(model, seed):
    cfg = LossConfig(gamma=0.9, gae_lambda=1.0, value_coef=0.5, entropy_coef=0.01)
    r = random_rollout(T=6, N=4, seed=seed)
    terms = actor_critic_loss(model, [r], cfg)
    total, policy, value, ent = reference_loss(model, r, cfg)
    assert terms.loss.item() == pytest.approx(total, rel=1e-4, abs=1e-5)
    assert terms.policy_loss == pytest.approx(policy, rel=1e-4, abs=1e-5)
    assert terms.value_loss == pytest.approx(value, rel=1e-4, abs=1e-5)
    assert terms.entropy == pytest.approx(ent, rel=1e-4, abs=1e-5)
    assert terms.num_samples == 24


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
