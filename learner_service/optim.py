"""Optimizers: TensorFlow-style RMSprop, as A2C/A3C were published with, and the factory."""

from __future__ import annotations

from collections.abc import Iterable

import torch


class RMSpropTF(torch.optim.Optimizer):
    """RMSprop as TensorFlow computes it (and SB3's RMSpropTFLike): the mean square starts at 1 and eps
    sits inside the square root, theta -= lr * g / sqrt(ms + eps). PyTorch's RMSprop starts at 0 and
    adds eps outside the root, which takes huge first steps with A2C's small eps.

    One instance on the learner is A3C's "shared statistics" RMSprop: every actor's gradient updates it.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 7e-4, alpha: float = 0.99, eps: float = 1e-5):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch's signature
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros(())
                    state["square_avg"] = torch.ones_like(p)
                state["step"] += 1
                square_avg = state["square_avg"]
                square_avg.mul_(group["alpha"]).addcmul_(p.grad, p.grad, value=1 - group["alpha"])
                p.addcdiv_(p.grad, square_avg.add(group["eps"]).sqrt_(), value=-group["lr"])


def make_optimizer(name: str, params: Iterable[torch.Tensor], lr: float, alpha: float, eps: float) -> torch.optim.Optimizer:
    if name == "rmsprop":
        return RMSpropTF(params, lr=lr, alpha=alpha, eps=eps)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, eps=eps)
    raise ValueError(f"unknown optimizer {name!r}")
