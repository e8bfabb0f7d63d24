"""The discrete action distributions, written out: independent categoricals (Discrete: one; MultiDiscrete: one
per dimension, log-probabilities and entropies summed, as SB3's MultiCategoricalDistribution) and independent
Bernoullis (MultiBinary: one per bit). The Gaussian lives with the model (its gSDE variant needs the features).
Their NumPy twins are in relayrl/numpy_policy.py; tests check the two against each other and against NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional


def categorical(logits: torch.Tensor, sizes: Sequence[int], actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(a) and entropy, [B] each, of categoricals over consecutive blocks of ``logits`` ([B, sum(sizes)]);
    ``actions`` hold one index per block ([B] or [B, len(sizes)])."""
    chosen = actions.long().reshape(-1, len(sizes))
    log_probs, entropies = [], []
    for i, block in enumerate(torch.split(logits, list(sizes), dim=1)):
        log_p = torch.log_softmax(block, dim=-1)
        log_probs.append(log_p.gather(-1, chosen[:, i : i + 1]).squeeze(-1))
        entropies.append(-(log_p.exp() * log_p).sum(-1))
    return torch.stack(log_probs).sum(0), torch.stack(entropies).sum(0)


def categorical_sample(
    logits: torch.Tensor, sizes: Sequence[int], greedy: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """One index per block (the most likely where ``greedy``), [B, len(sizes)] int64, and its log-probability."""
    picks = []
    for block in torch.split(logits, list(sizes), dim=1):
        if greedy:
            picks.append(block.argmax(-1))
        else:
            picks.append(torch.multinomial(torch.softmax(block, dim=-1), 1).squeeze(-1))
    actions = torch.stack(picks, dim=1)
    return actions, categorical(logits, sizes, actions)[0]


def bernoulli(logits: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(a) and entropy, [B] each, of independent Bernoullis with P(1) = sigmoid(logit); ``actions`` are
    0/1 of any shape [B, ...] matching ``logits`` once flattened."""
    bits = actions.reshape(logits.shape).float()
    log_one, log_zero = functional.logsigmoid(logits), functional.logsigmoid(-logits)
    log_prob = (bits * log_one + (1.0 - bits) * log_zero).sum(-1)
    entropy = -(log_one.exp() * log_one + log_zero.exp() * log_zero).sum(-1)
    return log_prob, entropy


def bernoulli_sample(logits: torch.Tensor, greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """0/1 per bit ([B, D] int64; greedy: 1 where P(1) > 0.5) and the log-probability of the whole action."""
    p = torch.sigmoid(logits)
    bits = (p > 0.5) if greedy else (torch.rand_like(p) < p)
    bits = bits.long()
    return bits, bernoulli(logits, bits)[0]
