"""The chaos soak (tests/e2e/chaos.py) for 60 seconds with a fixed seed: faults together, nothing lost.

The 60 s are the fault schedule's; the run then waits, with deadlines, for the target and its hold, so a
slow machine makes it longer, not red. `make chaos` runs the long form (CHAOS_SECONDS, CHAOS_SEED)."""

from __future__ import annotations

from tests.e2e import chaos


def test_a_60_second_chaos_soak_loses_nothing(capsys):
    with capsys.disabled():  # the schedule and the table are the test's report
        code = chaos.main(["--seconds", "60", "--seed", "15"])
    assert code == 0, "a broken invariant: see the table above (replay with the seed it names)"
