"""Data-parallel A2C learners (learner_service/group.py) on real torch.distributed (gloo), two processes: the
ranks' weights and normalisation statistics stay bitwise equal, and equal one learner's on the union of their
batches."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from learner_service.group import (
    average_gradients,
    broadcast_weights,
    same_everywhere,
    sum_over_ranks,
    weights_identical,
)
from learner_service.optim import make_optimizer
from learner_service.statistics import RunningStatistics
from learner_service.trainer import clip_and_step
from relayrl.loss import LossConfig, actor_critic_loss
from relayrl.model import ActorCritic
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, random_rollout

UPDATES = 12
CONFIG = LossConfig(gamma=0.99, entropy_coef=0.01, normalize_advantage=False)


def rollouts(update: int, rank: int, empty_rank: int | None):
    """Rank ``rank``'s batch in ``update``: [] for the rank without actors, else one rollout of its own size."""
    if rank == empty_rank:
        return []
    r = random_rollout(T=5, N=2 + rank, seed=100 * update + rank)
    r.valid[2, 0] = False  # ranks' batches differ in their valid counts: the weights must count valid steps
    return [r]


def valid_count(batch) -> float:
    return float(sum(r.valid.sum() for r in batch))


def fresh():
    torch.manual_seed(0)
    model = ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (16, 16))
    return model, make_optimizer("rmsprop_torch", model.parameters(), lr=1e-2, alpha=0.99, eps=1e-5)


def rank_main(rank: int, world: int, init: str, out: str, empty_rank: int | None) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    model, optimizer = fresh()
    params = list(model.parameters())
    stops = []
    for update in range(UPDATES):
        batch = rollouts(update, rank, empty_rank)
        optimizer.zero_grad(set_to_none=True)
        if batch:
            actor_critic_loss(model, batch, CONFIG).loss.backward()
        # in the last update rank 0 is stopped by a signal while rank 1 solves: the higher-priority reason wins
        stop = ("stopped", "solved")[rank] if update == UPDATES - 1 else None
        agreed = average_gradients(params, valid_count(batch), env_steps=10.0 * (rank + 1), stop=stop)
        clip_and_step(model, optimizer, 0.5)
        stops.append((agreed.samples, agreed.env_steps, agreed.stop))
    torch.save({"state": model.state_dict(), "agreed": stops}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def union_update(empty_rank: int | None):
    """One learner on both ranks' rollouts, update after update."""
    model, optimizer = fresh()
    for update in range(UPDATES):
        batch = rollouts(update, 0, empty_rank) + rollouts(update, 1, empty_rank)
        # the union's batch: both ranks' environments side by side (they share n_steps)
        wide = batch[0] if len(batch) == 1 else dataclasses.replace(
            batch[0],
            **{f: np.concatenate([getattr(r, f) for r in batch], axis=1)
               for f in ("observations", "actions", "rewards", "terminated", "truncated", "valid", "log_probs")},
            bootstrap_observations=np.concatenate([r.bootstrap_observations for r in batch]),
        )
        optimizer.zero_grad(set_to_none=True)
        actor_critic_loss(model, [wide], CONFIG).loss.backward()
        clip_and_step(model, optimizer, 0.5)
    return model.state_dict()


@pytest.mark.parametrize("empty_rank", [None, 0], ids=["both-ranks-fed", "rank-0-without-actors"])
def test_ranks_stay_bitwise_equal_and_step_as_one_learner_on_the_union(tmp_path, empty_rank):
    init = f"file://{tmp_path}/rendezvous"
    mp.start_processes(rank_main, args=(2, init, str(tmp_path), empty_rank), nprocs=2, start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), f"{name} differs between the ranks"
    union = union_update(empty_rank)
    start = fresh()[0].state_dict()
    moved = False
    for name, value in union.items():
        torch.testing.assert_close(ranks[0]["state"][name], value, rtol=1e-4, atol=1e-5, msg=name)
        moved |= not torch.equal(value, start[name])
    assert moved, "the updates changed the weights"
    # what the ranks agreed on: the valid samples of both, env steps summed, the stop reason of higher priority
    expected = [sum(valid_count(rollouts(u, r, empty_rank)) for r in range(2)) for u in range(UPDATES)]
    assert [a[0] for a in ranks[0]["agreed"]] == expected == [a[0] for a in ranks[1]["agreed"]]
    assert {a[1] for r in ranks for a in r["agreed"]} == {30.0}
    stops = [None] * (UPDATES - 1) + ["solved"]
    assert [a[2] for a in ranks[0]["agreed"]] == stops == [a[2] for a in ranks[1]["agreed"]]



def checks_main(rank: int, world: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    torch.manual_seed(rank)  # different weights on each rank, then rank 0's everywhere
    model = ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (8,))
    params = list(model.parameters())
    found = {
        "weights_before": weights_identical(params),
        "same_values": same_everywhere([7, 1234], torch.device("cpu")),
        "one_value_differs": same_everywhere([7, 1234 + rank], torch.device("cpu")),
    }
    broadcast_weights(model)
    found["weights_after"] = weights_identical(params)
    with torch.no_grad():  # one bit of one weight on rank 1
        if rank == 1:
            params[0].view(-1)[0] = torch.nextafter(params[0].view(-1)[0], torch.tensor(1.0))
    found["one_bit_differs"] = weights_identical(params)
    torch.save(found, f"{out}/checks{rank}.pt")
    dist.destroy_process_group()


def test_the_ranks_find_a_difference_in_one_bit_of_the_weights_or_in_their_resumed_counters(tmp_path):
    init = f"file://{tmp_path}/rendezvous"
    mp.start_processes(checks_main, args=(2, init, str(tmp_path)), nprocs=2, start_method="spawn")
    for rank in range(2):
        found = torch.load(tmp_path / f"checks{rank}.pt")
        assert found == {"weights_before": False, "same_values": True, "one_value_differs": False,
                         "weights_after": True, "one_bit_differs": False}, rank


def normalising() -> ActorCritic:
    return ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (8,), normalize_observations=True, normalize_rewards=True)


def statistics_main(rank: int, world: int, init: str, out: str, empty_rank: int | None) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    model = normalising()
    statistics = RunningStatistics(model, 0.9, reduce=lambda sums: sum_over_ranks(sums, torch.device("cpu")))
    for update in range(UPDATES):
        batch = rollouts(update, rank, empty_rank)
        statistics.after_update(statistics.before_update([rank] * len(batch), batch))
    torch.save(model.state_dict(), f"{out}/statistics{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("empty_rank", [None, 1], ids=["both-ranks-fed", "rank-1-without-actors"])
def test_ranks_fold_the_unions_normalisation_statistics(tmp_path, empty_rank):
    init = f"file://{tmp_path}/rendezvous"
    mp.start_processes(statistics_main, args=(2, init, str(tmp_path), empty_rank), nprocs=2, start_method="spawn")
    ranks = [torch.load(tmp_path / f"statistics{r}.pt") for r in range(2)]
    union = normalising()
    statistics = RunningStatistics(union, 0.9)  # one learner: each rank's actor a session of its own
    for update in range(UPDATES):
        batches = [rollouts(update, r, empty_rank) for r in range(2)]
        statistics.after_update(statistics.before_update([0] * len(batches[0]) + [1] * len(batches[1]),
                                                         batches[0] + batches[1]))
    names = [n for n in union.state_dict() if n.startswith(("obs_", "return_"))]
    assert len(names) == 6
    for name in names:
        assert torch.equal(ranks[0][name], ranks[1][name]), f"{name} differs between the ranks"
        rtol = 1e-9 if ranks[0][name].dtype == torch.float64 else 1e-6  # the mean and variance are float32 buffers
        torch.testing.assert_close(ranks[0][name], union.state_dict()[name], rtol=rtol, atol=0, msg=name)
    assert float(union.obs_count) == sum(valid_count(rollouts(u, r, empty_rank)) for u in range(UPDATES)
                                         for r in range(2))
