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
