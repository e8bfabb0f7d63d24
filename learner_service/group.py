"""Data-parallel A2C learners (issue 26): the ranks' one collective per update, on torch.distributed.

Each rank computes the actor-critic loss on its own actors' rollouts, a mean over its ``n_r`` valid transitions.
The union's loss is the mean over all of them, sum_r n_r L_r / sum_r n_r, so its gradient is the same weighted
mean of the ranks' gradients. One all-reduce (SUM) of a flat buffer [n_r * grad_r, n_r, header_r] gives every
rank the same sums; dividing by sum_r n_r gives every rank the union's gradient, bit for bit the same on every
rank (the reduced buffer is shared, not recomputed), and identical optimizers then keep the weights identical.
A rank with no rollouts contributes zeros (n_r = 0) rather than stalling the others.

The header carries what the ranks must agree on besides the gradient, summed: env steps (the learning-rate
schedule and --max-env-steps count the whole group's) and one count per stop reason (any rank's reason stops
every rank). Observation and reward normalisation statistics fold the union's samples on every rank (sums of
each rank's batch, all-reduced: ``sum_over_ranks``), so they stay the same on every rank and travel with the
weights as one learner's do. Advantage normalisation, where a preset turns it on, stays per rank (its mean and
standard deviation over the rank's own batch), unlike one learner's over the union.

The ranks are started the way torch users start them, by torchrun (torch.distributed.run): it sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT, and ``join`` reads them (the env:// rendezvous).
"""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

TIMEOUT = datetime.timedelta(minutes=5)

# Stop reasons in priority order: where ranks report different ones in the same update, the later wins.
STOP_REASONS = ("stopped", "max_seconds", "max_env_steps", "solved")


@dataclass
class GroupUpdate:
    """What the ranks agreed on in one update."""

    samples: float  # valid transitions over all ranks (0: no rank had a batch, nothing to step)
    env_steps: float  # env steps over all ranks in this update
    stop: str | None  # the highest-priority stop reason any rank reported, if any


def average_gradients(
    parameters: Sequence[torch.nn.Parameter], samples: float, env_steps: float = 0.0, stop: str | None = None,
    group: dist.ProcessGroup | None = None,
) -> GroupUpdate:
    """Replace every parameter's gradient with the group's sample-weighted mean (a rank without a batch passes
    ``samples`` 0 and may hold no gradients) and return what the ranks reported; one all-reduce."""
    like = parameters[0]
    flat = [
        (p.grad.reshape(-1) * samples) if p.grad is not None and samples > 0 else torch.zeros_like(p).reshape(-1)
        for p in parameters
    ]
    header = torch.zeros(2 + len(STOP_REASONS), dtype=like.dtype, device=like.device)
    header[0], header[1] = samples, env_steps
    if stop is not None:
        header[2 + STOP_REASONS.index(stop)] = 1.0
    buffer = torch.cat([*flat, header])
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM, group=group)
    reduced = buffer[-len(header):].tolist()  # the one host read of the update
    total = reduced[0]
    if total > 0:
        offset = 0
        for p in parameters:
            size = p.numel()
            p.grad = (buffer[offset : offset + size] / total).reshape(p.shape)
            offset += size
    reasons = [name for name, count in zip(STOP_REASONS, reduced[2:]) if count > 0]
    return GroupUpdate(samples=total, env_steps=reduced[1], stop=reasons[-1] if reasons else None)


@dataclass(frozen=True)
class Rank:
    """This process's place in a group of learners, as torchrun set it."""

    rank: int
    world_size: int
    local_rank: int  # among the ranks on this machine: offsets its ports and picks its GPU
    attempt: int = 0  # torchrun's restarts of the group so far (TORCHELASTIC_RESTART_COUNT)

    @property
    def writes(self) -> bool:
        """Rank 0 alone writes checkpoints, summary.json and TensorBoard; the others hold the same weights."""
        return self.rank == 0


def from_environment(environ: Mapping[str, str] = os.environ) -> Rank | None:
    """The rank torchrun gave this process, or None when it runs alone (no WORLD_SIZE, or 1)."""
    world = int(environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return Rank(int(environ["RANK"]), world, int(environ.get("LOCAL_RANK", environ["RANK"])),
                int(environ.get("TORCHELASTIC_RESTART_COUNT", "0")))


def join(rank: Rank, device: torch.device, environ: Mapping[str, str] = os.environ) -> None:
    """Join the group: NCCL between GPUs, gloo on CPUs, through the store at torchrun's MASTER_ADDR and
    MASTER_PORT. A collective waits at most TIMEOUT for the other ranks (a rank hung, not dead, then fails the
    group loudly)."""
    agent_store = environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # torchrun's agent serves it
    store = dist.TCPStore(environ["MASTER_ADDR"], int(environ["MASTER_PORT"]), rank.world_size,
                          is_master=not agent_store and rank.rank == 0, timeout=TIMEOUT)
    # torchrun restarts a failed group on the same store: without a prefix of the attempt, a restarted rank reads
    # the dead rank's address from the attempt before and fails to connect (seen here in 1 restart of 4)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=dist.PrefixStore(
        f"relayrl/attempt-{rank.attempt}", store), rank=rank.rank, world_size=rank.world_size, timeout=TIMEOUT,
        device_id=device if device.type == "cuda" else None)


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def digest(parameters: Sequence[torch.Tensor]) -> int:
    """A 63-bit hash of the parameters' bytes: equal on two ranks only if their weights are bitwise equal."""
    h = hashlib.blake2b(digest_size=8)
    for p in parameters:
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return int.from_bytes(h.digest(), "little") >> 1


def weights_identical(parameters: Sequence[torch.Tensor], group: dist.ProcessGroup | None = None) -> bool:
    """Whether every rank holds bitwise the same weights (a hash of them the same on every rank)."""
    return same_everywhere([digest(parameters)], parameters[0].device, group)


def same_everywhere(values: Sequence[int], device: torch.device, group: dist.ProcessGroup | None = None) -> bool:
    """Whether every rank passed the same integers: one all-reduce (MAX) of [values, -values]."""
    both = torch.tensor([*values, *(-v for v in values)], dtype=torch.int64, device=device)  # NCCL: on the GPU
    dist.all_reduce(both, op=dist.ReduceOp.MAX, group=group)
    n = len(values)
    return both[:n].tolist() == list(values) and [-v for v in both[n:].tolist()] == list(values)


def sum_over_ranks(values: np.ndarray, device: torch.device, group: dist.ProcessGroup | None = None) -> np.ndarray:
    """``values`` summed over every rank (float64), the same array on every rank; one all-reduce."""
    summed = torch.tensor(values, dtype=torch.float64, device=device)  # a copy: the all-reduce is in place
    dist.all_reduce(summed, op=dist.ReduceOp.SUM, group=group)
    return summed.cpu().numpy()


def broadcast_weights(model: torch.nn.Module) -> None:
    """Every rank takes rank 0's parameters and buffers (normalisation statistics included), bit for bit."""
    for tensor in model.state_dict().values():
        dist.broadcast(tensor, src=0)
