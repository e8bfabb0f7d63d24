"""The chaos soak's books (tests/e2e/ledger.py) balance when every contribution is accounted for, and break
when one is dropped without being counted, wherever that happens."""

from __future__ import annotations

from tests.e2e.ledger import ActorBooks, LearnerBooks, check_books


def books(**changes) -> tuple[list[ActorBooks], list[LearnerBooks]]:
    """Two actors and a learner killed then one stopped in order: 100 + 50 sent, two lost in transport at the
    kill, one pending in the killed learner; of three kept, one delivered again and two given up."""
    a = ActorBooks(
        "actor-0.1",
        "SIGTERM",
        100,
        97,
        1,
        {"learner_gone": 2, "actor_stopping": 1},
        {"future_version": 1, "actor_exit": 1},
        [("learner_gone", 1), ("learner_gone", 1), ("actor_stopping", 1)],
    )
    b = ActorBooks("actor-1.1", "SIGKILL", 50, 49, 0, {}, {}, [])
    killed = LearnerBooks("learner-1", "SIGKILL", 60, {"applied": 58, "dropped_stale": 1}, {})
    stopped = LearnerBooks("learner-2", "SIGTERM", 88, {"applied": 87, "dropped_stale": 1}, {})
    for name, value in changes.items():
        target, field = name.split("__")
        setattr({"a": a, "b": b, "killed": killed, "stopped": stopped}[target], field, value)
    return [a, b], [killed, stopped]


def broken(max_pending: int = 6, **changes) -> list[str]:
    checks, _ = check_books(*books(**changes), max_in_flight=1, max_pending=max_pending)
    return [c.name for c in checks if not c.ok]


def test_balanced_books_hold():
    assert broken() == []
    _, totals = check_books(*books(), max_in_flight=1, max_pending=6)
    assert totals["lost in transport (sent - received - refused)"] == 2  # 150 sent, 148 received
    assert totals["acks lost (settled - acknowledged)"] == 1  # 147 settled, 146 acknowledged


def test_a_contribution_settled_but_not_counted_breaks_the_stopped_learners_books():
    assert broken(stopped__outcomes={"applied": 86, "dropped_stale": 1}) == ["learner-2 settled what it received"]


def test_an_ack_for_a_contribution_no_learner_counted_breaks_the_books():
    assert "no Ack for what was not settled" in broken(
        stopped__outcomes={"applied": 85, "dropped_stale": 1}, stopped__received=86
    )


def test_a_contribution_dropped_on_arrival_unacknowledged_shows_at_its_streams_end():
    ends = [("learner_gone", 1), ("learner_gone", 1), ("actor_stopping", 2)]
    assert broken(a__stream_ends=ends) == ["actor-0.1 books balance"]


def test_a_killed_learner_holds_at_most_what_was_in_flight():
    assert broken() == []  # one pending
    assert broken(max_pending=0) == ["learner-1 settled what it received"]
