"""How contributions become batches: A2C rounds close on every live actor and come out in session order;
both coordinators answer the same interface."""

from __future__ import annotations

import threading

import pytest

from learner_service import coordinators
from learner_service.coordinators import AsyncQueue, Contribution, Coordinator, SyncRounds


def contribution(session: int, version: int = 0) -> Contribution:
    item = Contribution(0, version, 16)
    item.session = session
    return item


def test_a2c_round_is_batched_in_session_order_whatever_the_arrival_order():
    rounds = SyncRounds(timeout=60.0)
    for session in (0, 1, 2):
        rounds.join(session)
    for session in (2, 0):
        assert rounds.offer(contribution(session)) == "accepted"
    assert rounds.next_batch(wait=0) == []  # session 1 is live and has not delivered
    assert rounds.offer(contribution(1)) == "accepted"
    # the concatenated batch does not depend on which rollout arrived first
    assert [c.session for c in rounds.next_batch(wait=0)] == [0, 1, 2]


def test_a2c_round_refuses_other_versions_and_duplicates():
    rounds = SyncRounds(timeout=60.0)
    rounds.join(0)
    rounds.join(1)
    assert rounds.offer(contribution(0, version=1)) == "stale"
    assert rounds.offer(contribution(0)) == "accepted"
    assert rounds.offer(contribution(0)) == "duplicate"
    rounds.leave(1)  # a dead actor leaves the round at once
    assert [c.session for c in rounds.next_batch(wait=0)] == [0]
    assert rounds.offer(contribution(1)) == "stale"  # the round closed until advance()
    rounds.advance(1)
    assert rounds.offer(contribution(1, version=1)) == "accepted"


def test_a2c_round_left_open_by_the_next_version_is_handed_back_not_lost():
    """Among learner ranks the group can step without this rank's round (it stops, say): what its round had
    accepted comes back from advance(), for the trainer to drop as stale and acknowledge, not vanish uncounted."""
    rounds = SyncRounds(timeout=60.0)
    for session in (0, 1):
        rounds.join(session)
    for session in (1, 0):
        assert rounds.offer(contribution(session)) == "accepted"
    rounds.join(2)  # still open: session 2 has not delivered
    assert rounds.next_batch(wait=0) == []
    assert [c.session for c in rounds.advance(1)] == [0, 1]
    assert rounds.depth() == 0 and rounds.advance(2) == []
    assert rounds.offer(contribution(0, version=2)) == "accepted"


# --- the one interface both coordinators have (the servicer and the trainer never ask which it is) ---------
def both() -> list[Coordinator]:
    return [coordinators.for_algorithm("a2c", 60.0, 4), coordinators.for_algorithm("a3c", 60.0, 4)]


@pytest.mark.parametrize("coordinator", both(), ids=["a2c", "a3c"])
def test_both_coordinators_take_an_offer_the_same_way(coordinator):
    assert isinstance(coordinator, Coordinator)
    stop = threading.Event()
    coordinator.join(0)
    assert coordinator.offer(contribution(0), stop) == "accepted"
    assert coordinator.depth() == 1
    assert [c.session for c in coordinator.next_batch(wait=0)] == [0]
    assert coordinator.depth() == 0
    assert coordinator.next_batch(wait=0) == [], "a taken contribution is not handed out twice"
    coordinator.advance(1)  # the trainer published version 1: the next offer is that version's
    assert coordinator.offer(contribution(0, version=1), stop) == "accepted"
    assert [(c.session, c.policy_version) for c in coordinator.next_batch(wait=0)] == [(0, 1)]
    coordinator.leave(0)
    assert coordinator.depth() == 0 and coordinator.next_batch(wait=0) == []


def test_for_algorithm_picks_rounds_for_a2c_and_the_queue_for_a3c():
    rounds, queue = both()
    assert isinstance(rounds, SyncRounds) and not rounds.lag_grows_with_actors
    assert isinstance(queue, AsyncQueue) and queue.lag_grows_with_actors and queue.capacity == 4


def test_after_a_stop_only_the_a3c_queue_has_leftovers_to_apply():
    rounds, queue = both()
    for coordinator in (rounds, queue):
        coordinator.join(0)
        coordinator.join(1)
        assert coordinator.offer(contribution(0), threading.Event()) == "accepted"
    assert rounds.leftover() == [], "an open A2C round is dropped"
    assert [c.session for c in queue.leftover()] == [0], "an accepted A3C contribution is applied"
    assert queue.leftover() == []


def test_a_full_a3c_queue_gives_up_an_offer_when_the_learner_stops():
    queue = AsyncQueue(1)
    stop = threading.Event()
    assert queue.offer(contribution(0), stop) == "accepted"
    stop.set()
    assert queue.offer(contribution(1), stop) == "stopped"


def test_barrier_clock_splits_the_actors_wait_between_the_round_and_the_update():
    from learner_service.barrier import BarrierClock

    times = iter([0.0,  # created
                  1.0, 2.0, 3.0,  # round 1 (start-up's: not counted): an arrival, closed, published
                  10.0, 11.0, 12.0, 14.0])  # round 2: two arrivals, closed, published
    clock = BarrierClock(now=lambda: next(times))
    clock.arrived(), clock.closed(), clock.published()
    assert clock.summary()["rounds"] == 0
    clock.arrived(), clock.arrived(), clock.closed(), clock.published()
    # 2 actors over a round of 14 - 3 = 11 s: 22 actor-seconds; waiting for the slower: 2 + 1; for the update: 2 x 2
    assert clock.summary() == {"rounds": 1, "idle_share": round(7 / 22, 4),
                               "waiting_for_round_share": round(3 / 22, 4),
                               "waiting_for_update_share": round(4 / 22, 4), "mean_close_to_publish_seconds": 2.0}


def test_only_a2c_has_a_barrier():
    rounds, queue_ = both()
    assert queue_.barrier() is None
    assert rounds.barrier()["rounds"] == 0
