"""Gradient clipping in the learner's step: both paths to the optimizer (A2C's rollouts, A3C's gradients)
clip the global gradient norm to --max-grad-norm before stepping, and report the norm before clipping.

Each case is compared with the same optimizer stepped on gradients clipped by hand (g * c / |g|); with
RMSpropTF (the mean square starts at 1) a clipped and an unclipped step differ by orders of magnitude, so
switching clipping off, or passing another threshold, fails here.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from learner_service.coordinators import AsyncQueue, Contribution
from learner_service.metrics import LearnerMetrics
from learner_service.optim import make_optimizer
from learner_service.progress import Progress
from learner_service.sessions import WeightsBoard
from learner_service.trainer import NonFiniteUpdate, Trainer, apply_gradients, clip_and_step, update_from_rollouts
from relayrl.loss import LossConfig, actor_critic_loss
from relayrl.model import ActorCritic
from tests.helpers import random_rollout

MAX_NORM = 0.5
LOSS = LossConfig(gamma=0.99, gae_lambda=1.0, value_coef=0.5, entropy_coef=0.01, normalize_advantage=False)


def model_and_optimizer(seed: int = 0):
    torch.manual_seed(seed)
    model = ActorCritic(gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(2), (8,))
    return model, make_optimizer("rmsprop", model.parameters(), 0.1, 0.99, 1e-5)


def big_gradients(model) -> dict[str, np.ndarray]:
    """Gradients with a global norm far above MAX_NORM, different in every parameter."""
    rng = np.random.default_rng(1)
    return {name: (rng.normal(size=tuple(p.shape)) * 50).astype(np.float32) for name, p in model.named_parameters()}


def global_norm(grads) -> float:
    return float(np.sqrt(sum(float((np.asarray(g, np.float64) ** 2).sum()) for g in grads)))


def step_by_hand(model, optimizer, grads: dict[str, np.ndarray], clip: bool) -> None:
    """What the learner's step must do, written out: scale every gradient by MAX_NORM / |g| (when above)."""
    scale = min(1.0, MAX_NORM / (global_norm(grads.values()) + 1e-6)) if clip else 1.0
    for name, p in model.named_parameters():
        p.grad = torch.tensor(grads[name] * scale)
    optimizer.step()


def parameters(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-7)


def assert_differs(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True)) > 1e-3


def test_a3c_gradients_are_clipped_to_max_grad_norm_and_the_norm_before_is_reported():
    model, optimizer = model_and_optimizer()
    grads = big_gradients(model)
    clipped_model = copy.deepcopy(model)
    clipped_opt = make_optimizer("rmsprop", clipped_model.parameters(), 0.1, 0.99, 1e-5)
    raw_model = copy.deepcopy(model)
    raw_opt = make_optimizer("rmsprop", raw_model.parameters(), 0.1, 0.99, 1e-5)

    norm = apply_gradients(model, optimizer, grads, MAX_NORM)

    assert norm == pytest.approx(global_norm(grads.values()), rel=1e-5) and norm > 100 * MAX_NORM
    step_by_hand(clipped_model, clipped_opt, grads, clip=True)
    step_by_hand(raw_model, raw_opt, grads, clip=False)
    assert_same(parameters(model), parameters(clipped_model))
    assert_differs(parameters(model), parameters(raw_model))  # the case tells clipped from unclipped


def test_a2c_rollout_update_clips_the_loss_gradient():
    model, optimizer = model_and_optimizer()
    rollout = random_rollout(T=6, N=4, seed=3)
    rollout.rewards[:] *= 1000.0  # a loss whose gradient is far above MAX_NORM
    reference = copy.deepcopy(model)
    reference_opt = make_optimizer("rmsprop", reference.parameters(), 0.1, 0.99, 1e-5)

    _, norm = update_from_rollouts(model, optimizer, [rollout], LOSS, MAX_NORM)

    actor_critic_loss(reference, [rollout], LOSS).loss.backward()
    grads = {name: p.grad.numpy().copy() for name, p in reference.named_parameters()}
    assert norm == pytest.approx(global_norm(grads.values()), rel=1e-4) and norm > 100 * MAX_NORM
    step_by_hand(reference, reference_opt, grads, clip=True)
    assert_same(parameters(model), parameters(reference))


def test_a_gradient_below_the_threshold_is_applied_as_it_is():
    model, optimizer = model_and_optimizer()
    grads = {name: g * (0.1 / global_norm(big_gradients(model).values())) for name, g in big_gradients(model).items()}
    reference = copy.deepcopy(model)
    reference_opt = make_optimizer("rmsprop", reference.parameters(), 0.1, 0.99, 1e-5)
    for name, p in model.named_parameters():
        p.grad = torch.tensor(grads[name])
    assert clip_and_step(model, optimizer, MAX_NORM) == pytest.approx(0.1, rel=1e-5)
    step_by_hand(reference, reference_opt, grads, clip=False)
    assert_same(parameters(model), parameters(reference))


@pytest.mark.parametrize("max_grad_norm", [0.5, 5.0])
def test_the_trainer_clips_with_its_configured_threshold(max_grad_norm):
    """The Trainer's own step (as the learner runs it): its --max-grad-norm, not a constant, is the threshold."""
    model, optimizer = model_and_optimizer()
    reference = copy.deepcopy(model)
    reference_opt = make_optimizer("rmsprop", reference.parameters(), 0.1, 0.99, 1e-5)
    trainer = Trainer(model, optimizer, AsyncQueue(4), WeightsBoard(), Progress(), LearnerMetrics(), LOSS,
                      max_grad_norm, 8)
    grads = big_gradients(model)
    assert trainer.step([Contribution(0, 0, 16, grads=grads)])

    scale = max_grad_norm / (global_norm(grads.values()) + 1e-6)
    for name, p in reference.named_parameters():
        p.grad = torch.tensor(grads[name] * scale)
    reference_opt.step()
    assert_same(parameters(model), parameters(reference))
    assert trainer.last_update["grad_norm"] == pytest.approx(global_norm(grads.values()), rel=1e-5)


def test_a_non_finite_gradient_is_refused_naming_its_norm_and_applies_nothing():
    model, optimizer = model_and_optimizer()
    before = parameters(model)
    grads = big_gradients(model)
    first = next(iter(grads))
    grads[first] = np.full_like(grads[first], np.inf)
    with pytest.raises(NonFiniteUpdate, match=r"^gradient norm (inf|nan)$"):
        apply_gradients(model, optimizer, grads, MAX_NORM)
    assert_same(parameters(model), before)
    assert all(p.grad is None for p in model.parameters()), "the bad gradient is dropped, not left for the next step"
