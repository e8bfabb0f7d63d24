"""The chaos soak's fault schedule (tests/e2e/chaos.py draw_schedule): one learner's seeds replay as they always
did; with learner ranks kill_rank is drawn, for every rank, and no learner fault lands while the last one's
restart (torchrun's, for a rank kill) can still be running."""

from __future__ import annotations

from tests.e2e.chaos import RANKS_RESTART, draw_schedule

LEARNER_FAULTS = ("kill_rank", "kill_learner", "term_learner")

# make test's soak (seed 15, 60 s, 3 actors), as drawn before learner ranks existed: a seed must replay the faults
# it named in a report
SEED_15 = [
    (3.9, "kill_actor", 2, 0.3),
    (13.7, "kill_actor", 0, 2.7),
    (18.2, "cut", 1, 2.7),
    (21.6, "cut", 0, 7.1),
    (28.0, "kill_actor", 2, 1.6),
    (29.0, "kill_learner", None, 2.2),
    (31.5, "cut", 1, 5.0),
    (42.1, "term_learner", None, 3.2),
    (48.8, "kill_actor", 0, 0.7),
    (52.3, "kill_actor", 0, 0.4),
    (57.5, "cut", 1, 3.8),
]


def test_one_learners_schedule_is_the_one_drawn_before_ranks():
    assert [(f.at, f.kind, f.slot, f.length) for f in draw_schedule(15, 60, 3, 4.0)] == SEED_15
    assert draw_schedule(15, 60, 3, 4.0, learners=1) == draw_schedule(15, 60, 3, 4.0)


def test_kill_rank_is_drawn_only_with_ranks_and_reaches_every_rank():
    assert not [f for seed in range(100) for f in draw_schedule(seed, 600, 3, 4.0) if f.kind == "kill_rank"]
    ranked = [f for seed in range(30) for f in draw_schedule(seed, 600, 3, 4.0, learners=3) if f.kind == "kill_rank"]
    assert {f.slot for f in ranked} == {0, 1, 2}
    assert all(f.length == 0 for f in ranked)  # torchrun restarts the group: the soak starts nothing
    assert "the group restarted by torchrun" in str(ranked[0])


def test_no_learner_fault_while_a_group_restart_can_still_run():
    kinds = set()
    for seed in range(100):
        faults = [f for f in draw_schedule(seed, 100, 3, 4.0, learners=2) if f.kind in LEARNER_FAULTS]
        kinds |= {f.kind for f in faults}
        for before, after in zip(faults, faults[1:]):
            # the draw's times are rounded to 0.1 s after the gap was kept
            assert after.at - (before.at + before.length) >= RANKS_RESTART - 0.15, (seed, before, after)
    assert kinds == set(LEARNER_FAULTS)
