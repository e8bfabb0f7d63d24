"""Optimizers: TensorFlow-style RMSprop, as A2C/A3C were published with, and Adam.

Both are written out in a few lines instead of subclassing torch.optim.Optimizer, whose first use
imports torch._dynamo: 1.6 s of start-up on a 2-core machine, a third of the time CartPole takes to
solve. They keep the same step()/zero_grad()/state_dict() surface; tests check them against the
formulas and against torch.optim.Adam.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch


class Optimizer:
    """Per-parameter state tensors, saved and restored by position."""

    STATE: tuple[str, ...] = ()

    def __init__(self, params: Iterable[torch.Tensor], lr: float) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr = lr
        self.steps = 0
        self.state = [{name: self._initial(name, p) for name in self.STATE} for p in self.params]

    def _initial(self, name: str, p: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(p)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "lr": self.lr,
            "state": [{k: v.detach().cpu().clone() for k, v in s.items()} for s in self.state],
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        if len(saved["state"]) != len(self.params):
            raise ValueError(f"optimizer state for {len(saved['state'])} parameters, model has {len(self.params)}")
        for mine, theirs, p in zip(self.state, saved["state"], self.params):
            for name in self.STATE:
                if theirs[name].shape != p.shape:
                    raise ValueError(
                        f"optimizer state {name} of shape {tuple(theirs[name].shape)} for {tuple(p.shape)}"
                    )
                mine[name] = theirs[name].to(p.device, p.dtype)
        self.steps = int(saved["steps"])


class RMSpropTF(Optimizer):
    """RMSprop as TensorFlow computes it (and SB3's RMSpropTFLike): the mean square starts at 1 and eps
    sits inside the square root, theta -= lr * g / sqrt(ms + eps). PyTorch's RMSprop starts at 0 and
    adds eps outside the root, which takes huge first steps with A2C's small eps.

    One instance on the learner is A3C's "shared statistics" RMSprop: every actor's gradient updates it.
    """

    STATE = ("square_avg",)

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 7e-4, alpha: float = 0.99, eps: float = 1e-5):
        super().__init__(params, lr)
        self.alpha, self.eps = alpha, eps

    def _initial(self, name: str, p: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(p)

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for p, s in zip(self.params, self.state):
            if p.grad is None:
                continue
            ms = s["square_avg"]
            ms.mul_(self.alpha).addcmul_(p.grad, p.grad, value=1 - self.alpha)
            p.addcdiv_(p.grad, self._root(ms), value=-self.lr)

    def _root(self, ms: torch.Tensor) -> torch.Tensor:
        return ms.add(self.eps).sqrt_()


class RMSpropTorch(RMSpropTF):
    """RMSprop as PyTorch computes it, and so Stable-Baselines3's A2C for MLP policies (whose figures the zoo
    publishes): the mean square starts at 0 and eps is added to the root, theta -= lr * g / (sqrt(ms) + eps).
    Its steps are about lr in size from the start, whatever the gradient's scale; TF-style steps on small
    gradients stay far smaller until the mean square has decayed from 1 (hundreds of updates)."""

    def _initial(self, name: str, p: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(p)

    def _root(self, ms: torch.Tensor) -> torch.Tensor:
        return ms.sqrt().add_(self.eps)


class Adam(Optimizer):
    """Kingma & Ba (2015), Algorithm 1, with bias correction."""

    STATE = ("m", "v")

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        correction1 = 1 - self.beta1**self.steps
        correction2 = 1 - self.beta2**self.steps
        for p, s in zip(self.params, self.state):
            if p.grad is None:
                continue
            s["m"].mul_(self.beta1).add_(p.grad, alpha=1 - self.beta1)
            s["v"].mul_(self.beta2).addcmul_(p.grad, p.grad, value=1 - self.beta2)
            denom = (s["v"].sqrt() / math.sqrt(correction2)).add_(self.eps)
            p.addcdiv_(s["m"], denom, value=-self.lr / correction1)


def make_optimizer(name: str, params: Iterable[torch.Tensor], lr: float, alpha: float, eps: float) -> Optimizer:
    if name == "rmsprop":
        return RMSpropTF(params, lr=lr, alpha=alpha, eps=eps)
    if name == "rmsprop_torch":
        return RMSpropTorch(params, lr=lr, alpha=alpha, eps=eps)
    if name == "adam":
        return Adam(params, lr=lr, eps=eps)
    raise ValueError(f"unknown optimizer {name!r}")


def linear_schedule(initial: float, total_steps: int) -> Callable[[int], float]:
    """The learning rate after ``steps`` env steps: from ``initial`` down to 0 at ``total_steps`` (as SB3's lin_)."""
    return lambda steps: initial * max(0.0, 1.0 - steps / total_steps)
