"""The chaos soak (tests/e2e/chaos.py) for 60 seconds with a fixed seed: faults together, nothing lost.

The 60 s are the fault schedule's; the run then waits, with deadlines, for the target and its hold, so a
slow machine makes it longer, not red. `make chaos` runs the long form (CHAOS_SECONDS, CHAOS_SEED)."""

from __future__ import annotations

import json

from tests.e2e import chaos


def test_a_60_second_chaos_soak_loses_nothing(capsys, tmp_path):
    with capsys.disabled():  # the schedule and the table are the test's report
        code = chaos.main(["--seconds", "60", "--seed", "15", "--out", str(tmp_path / "chaos.json")])
    assert code == 0, "a broken invariant: see the table above (replay with the seed it names)"
    written = json.loads((tmp_path / "chaos.json").read_text())  # what a committed soak result would hold
    assert written["all_hold"] and written["seed"] == 15 and written["invariants"] and written["schedule"]
    assert written["run"]["started_at"] < written["run"]["finished_at"] <= written["provenance"]["finished_at"]


RANKS_SEED = 2  # its 40 s draw a kill_rank and a term_learner (SIGTERM to torchrun, passed on to the ranks)


def test_a_chaos_soak_with_two_learner_ranks_loses_nothing(capsys, tmp_path):
    """--learners 2: a rank SIGKILLed (torchrun restarts the group from the newest checkpoint), the learner faults
    acting on torchrun and its ranks together, actor slot s reaching rank s mod 2; the same invariants."""
    drawn = {f.kind for f in chaos.draw_schedule(RANKS_SEED, 40, 3, 4.0, learners=2)}
    assert {"kill_rank", "term_learner"} <= drawn
    with capsys.disabled():
        code = chaos.main(
            ["--learners", "2", "--seconds", "40", "--seed", str(RANKS_SEED), "--out", str(tmp_path / "chaos.json")]
        )
    assert code == 0, "a broken invariant: see the table above (replay with the seed it names)"
    written = json.loads((tmp_path / "chaos.json").read_text())
    assert written["all_hold"] and written["learners"] == 2
    assert int(written["figures"]["group restarts by torchrun"]) >= 1  # the rank kill happened, and was survived
