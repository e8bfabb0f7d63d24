"""How contributions become batches: A2C rounds close on every live actor and come out in session order."""

from __future__ import annotations

from learner_service.coordinators import Contribution, SyncRounds


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
