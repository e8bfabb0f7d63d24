"""Actors retry with capped, jittered exponential backoff: no busy loop and no log flood, even against a
learner that refuses them at once."""

from __future__ import annotations

import logging
import random
import re
import time

from actor_service.client import Backoff
from tests.conftest import metric, wait_until

TOKEN = "the-right-token-0123456789"


def test_backoff_doubles_to_the_cap_with_jitter():
    backoff = Backoff(0.05, 1.0, random.Random(0))
    delays = [backoff.next() for _ in range(10)]
    for i, delay in enumerate(delays):
        ceiling = min(0.05 * 2**i, 1.0)
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays[6:]}) == 4, "jittered, not the same delay every time at the cap"
    backoff.reset()
    assert backoff.next() <= 0.05


def test_a_refused_actor_backs_off_without_flooding(start_learner, start_actor, caplog):
    caplog.set_level(logging.INFO, logger="relayrl.actor")
    learner = start_learner(algo="a2c", n_steps=4, auth_token=TOKEN)
    actor = start_actor(learner.address, auth_token="a-wrong-token-0123456789", backoff_initial=0.02, backoff_max=0.4)
    refused = lambda: metric(learner.metrics.registry, "relayrl_rejected_total", {"reason": "unauthenticated"})  # noqa: E731
    started = time.monotonic()
    wait_until(lambda: refused() >= 6, 10, "six refused attempts")
    actor.close()
    elapsed = time.monotonic() - started
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    delays = [float(re.search(r"retrying in ([\d.]+)s", m).group(1)) for m in retries]
    assert all("UNAUTHENTICATED" in m for m in retries), retries[:2]
    assert len(retries) <= refused() + 1, "one log line per attempt"
    # attempts are spaced by the backoff: 0.02, 0.04, 0.08, 0.16, 0.32, then 0.4 at most (each jittered down
    # to half), so six attempts take at least 0.31 s; a busy loop would make hundreds in that time
    assert sum(delays[:5]) >= 0.01 + 0.02 + 0.04 + 0.08 + 0.16 and elapsed >= 0.31
    assert max(delays) <= 0.4, "capped"
