"""The gauge the actor autoscaler scales on, with real processes: relayrl_learner_starvation_ratio on the
learner's /metrics is high while the learner has no data to learn from, falls once an actor feeds it more
than it can apply, and rises again when that actor goes away.

The learner computes each rollout's gradient (A3C, trajectories transport) through a 1024x1024 network:
several times the work the actor spends acting on the same rollout with the policy half alone, so one actor
keeps it saturated on any machine (an actor collects its next rollout while the last is applied)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import wait_until

from .conftest import VENV_BIN
from .services import Service, try_scrape

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_")}
GAUGE = "relayrl_learner_starvation_ratio"
STARVED, SATURATED = 0.9, 0.25


def test_the_gauge_rises_when_the_learner_starves_and_falls_when_it_is_saturated(tmp_path, services):
    relayrl = str(VENV_BIN / "relayrl")
    learner = Service("learner", [relayrl, "learner", "--host", "127.0.0.1", "--port", "0",
                                  "--metrics-port", "0", "--algo", "a3c", "--transport", "trajectories",
                                  "--hidden-sizes", "1024,1024", "--log-every", "60"],
                      CLEAN_ENV, tmp_path, cwd=tmp_path)
    services.append(learner)
    grpc, metrics = learner.port("grpc"), learner.port("metrics")

    def gauge() -> float:
        if not learner.running():
            pytest.fail(f"learner exited with {learner.popen.returncode}\n{learner.tail()}")
        return (try_scrape(metrics) or {}).get(GAUGE, -1.0)

    # Alone, it waits for data all the time.
    wait_until(lambda: gauge() > STARVED, 60, f"{GAUGE} > {STARVED} with no actor", 0.5)

    actor = Service("actor", [relayrl, "actor", "--learner", f"127.0.0.1:{grpc}", "--num-envs", "64",
                              "--metrics-port", "-1", "--health-port", "-1", "--backoff-max", "0.5"],
                    CLEAN_ENV, tmp_path, cwd=tmp_path)
    services.append(actor)
    wait_until(lambda: actor.running() and gauge() < SATURATED, 120,
               f"{GAUGE} < {SATURATED} with an actor feeding more than the learner applies", 0.5)
    assert (try_scrape(metrics) or {})["relayrl_updates_total"] > 0

    # The fleet goes away: the learner starves again.
    assert actor.terminate(15) == 0, actor.tail()
    wait_until(lambda: gauge() > STARVED, 60, f"{GAUGE} > {STARVED} after the actor left", 0.5)
