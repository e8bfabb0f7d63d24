"""What the device benchmark checks before it times anything: the learner's loss and gradients on the device
equal the CPU's on the same fixed batch, and what one update costs there and how often it waits for the device.

The fixed batches: the Nature CNN on uint8 Atari frames (4x84x84, 6 actions) and an MLP with gSDE on a Box
action space, each two rollouts of seeded random data, the loss with every term switched on (GAE, entropy,
importance ratios against behaviour log-probs). The CPU side is the plain loss (relayrl.loss.gather); the
device side is the learner's path (learner_service.device_batch: packed, pinned on CUDA, one copy). With no
CUDA the device side runs on the CPU too: it still checks the packing, not the device.

Tolerance: float32 sums in another order differ by ~1e-6 relatively; cuDNN's convolutions use TF32 by
default (torch.backends.cudnn.allow_tf32, 10-bit mantissas), ~1e-3. The check therefore runs with TF32 off
against STRICT, and reports the difference with torch's settings as they are (what the learner runs:
cuDNN's TF32 on, matmul's off, unless changed) for comparison with TF32.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import gymnasium as gym
import numpy as np
import torch

from learner_service.device_batch import host_state, pack_rollouts
from learner_service.optim import make_optimizer
from learner_service.trainer import update_from_rollouts
from relayrl.loss import LossConfig, actor_critic_loss
from relayrl.model import ActorCritic
from relayrl.rollout import Rollout

STRICT = {"rtol": 1e-4, "atol": 1e-6}  # loss terms: |a - b| <= atol + rtol |b|; gradients: ||a - b|| <= rtol ||b||
TF32 = {"rtol": 2e-2, "atol": 1e-4}
FRAMES, ACTIONS = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(6)
LOSS = LossConfig(gamma=0.99, gae_lambda=0.95, value_coef=0.25, entropy_coef=0.01)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def rollout(observation_space: gym.Space, action_space: gym.Space, T: int, N: int, seed: int) -> Rollout:
    """Seeded random data in the spaces' shapes and dtypes, with episode ends, invalid steps and old log-probs."""
    rng = np.random.default_rng(seed)
    space_rng = np.random.default_rng(seed + 1)

    def sample(space: gym.Space, shape: tuple[int, ...]) -> np.ndarray:
        if isinstance(space, gym.spaces.Discrete):
            return space_rng.integers(0, space.n, shape).astype(np.int64)
        if space.dtype == np.uint8:
            return space_rng.integers(0, 256, (*shape, *space.shape), dtype=np.uint8)
        return space_rng.uniform(-1, 1, (*shape, *space.shape)).astype(space.dtype)

    terminated = rng.random((T, N)) < 0.1
    truncated = (rng.random((T, N)) < 0.05) & ~terminated
    valid = np.ones((T, N), bool)
    valid[1:] = ~(terminated | truncated)[:-1]
    return Rollout(observations=sample(observation_space, (T, N)), actions=sample(action_space, (T, N)),
                   rewards=rng.normal(size=(T, N)).astype(np.float32), terminated=terminated, truncated=truncated,
                   valid=valid, log_probs=rng.normal(-1.5, 0.3, (T, N)).astype(np.float32),
                   bootstrap_observations=sample(observation_space, (N,)), policy_version=0)


def cases(quick: bool) -> dict[str, tuple[ActorCritic, list[Rollout]]]:
    """The fixed batches and freshly seeded models for them."""
    n = 2 if quick else 8
    torch.manual_seed(0)
    cnn = ActorCritic(FRAMES, ACTIONS, (64,))
    box, obs = gym.spaces.Box(-2, 2, (2,), np.float32), gym.spaces.Box(-5, 5, (6,), np.float32)
    torch.manual_seed(1)
    gsde = ActorCritic(obs, box, (64, 64), use_sde=True, log_std_init=-1.0)
    return {"cnn_uint8": (cnn, [rollout(FRAMES, ACTIONS, 5, n, s) for s in (0, 1)]),
            "mlp_gsde": (gsde, [rollout(obs, box, 8, 2 * n, s) for s in (2, 3)])}


def _loss_and_grads(model: ActorCritic, rollouts: list[Rollout], staged: bool) -> tuple[list[float], list]:
    model.zero_grad(set_to_none=True)
    if staged:
        terms = actor_critic_loss(model, rollouts, LOSS, gather=pack_rollouts)
    else:
        terms = actor_critic_loss(model, rollouts, LOSS)
    terms.loss.backward()
    values = [terms.loss.item(), terms.policy_loss, terms.value_loss, terms.entropy]
    return values, [p.grad.detach().cpu().double() for p in model.parameters()]


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def differences(reference: tuple, other: tuple) -> dict[str, float]:
    (ref_values, ref_grads), (values, grads) = reference, other
    loss = max(abs(a - b) / (STRICT["atol"] / STRICT["rtol"] + abs(b)) for a, b in zip(values, ref_values))
    grad = max(float((g - r).norm() / r.norm().clamp(min=1e-12)) for g, r in zip(grads, ref_grads))
    return {"loss_terms_max_relative": loss, "gradients_max_relative": grad}


def compare(quick: bool) -> dict:
    """Each fixed batch's loss terms and gradients: CPU (plain) against the device (the learner's staging)."""
    target = device()
    out: dict = {"device": str(target), "tolerance_strict": STRICT, "tolerance_tf32": TF32, "cases": {}}
    for name, (model, rollouts) in cases(quick).items():
        reference = _loss_and_grads(model, rollouts, staged=False)
        on_device = copy.deepcopy(model).to(target)
        with tf32(False):
            strict = differences(reference, _loss_and_grads(on_device, rollouts, staged=True))
        default = differences(reference, _loss_and_grads(on_device, rollouts, staged=True))  # torch's settings
        passed = max(strict.values()) <= STRICT["rtol"]
        out["cases"][name] = {"samples": sum(r.rewards.size for r in rollouts), "strict": strict,
                              "tf32": default, "passed": passed}
    out["passed"] = all(case["passed"] for case in out["cases"].values())
    return out


def count_synchronisations(fn) -> int | None:
    """How many times ``fn`` made the host wait for the device (torch's sync debug mode); None without CUDA."""
    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def update_cost(actors: int, reps: int, target: torch.device | None = None) -> dict:
    """One A2C update of a round of ``actors`` x 8 envs x 5 steps of Atari frames (the preset's shapes) through
    the learner's own update (staging, loss, step, weights to the host), on ``target``: milliseconds each, and
    the host synchronisations in one update and in one weights copy."""
    target = target or device()
    torch.manual_seed(0)
    model = ActorCritic(FRAMES, ACTIONS, (64,)).to(target)
    optimizer = make_optimizer("rmsprop", model.parameters(), lr=7e-4, alpha=0.99, eps=1e-5)
    rollouts = [rollout(FRAMES, ACTIONS, 5, 8, seed) for seed in range(actors)]

    def update() -> None:
        update_from_rollouts(model, optimizer, rollouts, LOSS, 0.5)

    def weights() -> None:
        host_state(model)

    update()  # warm-up: cuDNN picks its algorithms, the caching allocators fill
    weights()
    if target.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(reps):
        update()
        weights()  # as the trainer publishes after each update: the step's device work ends in this copy
    seconds = (time.perf_counter() - started) / reps
    return {"device": str(target), "samples": actors * 40, "reps": reps, "ms_per_update": seconds * 1e3,
            "ms_per_env_step": seconds * 1e3 / (actors * 40),
            "synchronisations_per_update": count_synchronisations(update),
            "synchronisations_per_weights_copy": count_synchronisations(weights)}
