"""32 concurrent clients against one learner process: no deadlock, bounded memory, and every contribution
accounted for (acknowledged, and either applied or counted as dropped). Speed is printed, never asserted."""

from __future__ import annotations

import json

from tests.e2e.loadgen import run


def test_32_clients_every_contribution_applied_or_dropped_memory_bounded(capsys):
    # window 4: 128 contributions in flight against a queue of 64, so backpressure is exercised too
    result = run(clients=32, seconds=6, window=4, queue_size=64)
    with capsys.disabled():
        print("\n[load] " + json.dumps(result))
    assert result["hung_clients"] == 0 and result["client_errors"] == [], "no deadlock, no broken stream"
    assert result["learner_exit_code"] == 0
    assert result["sent"] == result["acked"], "every contribution acknowledged"
    assert result["applied"] + result["dropped_stale"] == result["sent"], "applied or counted as dropped"
    assert result["rejected"] == 0
    assert result["rss_after_mib"] - result["rss_before_mib"] < 64, "memory does not grow with the load's length"
    assert result["rss_max_during_mib"] - result["rss_before_mib"] < 64
