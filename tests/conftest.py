"""Fixtures that run real services in-process: a learner on a free loopback port, actors in threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from actor_service.actor import Actor
from actor_service.config import ActorConfig
from learner_service.config import LearnerConfig
from learner_service.main import Learner
from relayrl.config import load


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``condition`` until it holds; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def flags(**values) -> list[str]:
    out = []
    for key, value in values.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is False:
            out.append("--no-" + key.replace("_", "-"))
        else:
            out += [flag, str(value)]
    return out


class RunningLearner:
    def __init__(self, **overrides) -> None:
        values = dict(
            host="127.0.0.1", port=0, metrics_port=-1, log_every=3600, checkpoint_every=3600, hidden_sizes="16,16"
        )
        values.update(overrides)
        self.config = load(LearnerConfig, flags(**values), environ={})
        self.learner = Learner(self.config)
        self.learner.start()
        self.address = f"127.0.0.1:{self.learner.port}"
        self.thread = threading.Thread(target=self.learner.serve, daemon=True)
        self.thread.start()

    def __getattr__(self, name):
        return getattr(self.learner, name)

    def close(self) -> None:
        self.learner.stop.set()
        self.thread.join(timeout=30)


class RunningActor:
    def __init__(self, address: str, **overrides) -> None:
        values = dict(
            learner=address,
            num_envs=4,
            metrics_port=-1,
            health_port=-1,
            backoff_initial=0.02,
            backoff_max=0.5,
            connect_timeout=2,
        )
        values.update(overrides)
        self.actor = Actor(load(ActorConfig, flags(**values), environ={}))
        self.exit_code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.exit_code = self.actor.run()

    def __getattr__(self, name):
        return getattr(self.actor, name)

    def close(self) -> None:
        self.actor.stop.set()
        self.thread.join(timeout=30)


@pytest.fixture
def start_learner():
    started: list[RunningLearner] = []

    def start(**overrides) -> RunningLearner:
        learner = RunningLearner(**overrides)
        started.append(learner)
        return learner

    yield start
    for learner in started:
        learner.close()


@pytest.fixture
def start_actor():
    started: list[RunningActor] = []

    def start(address: str, **overrides) -> RunningActor:
        actor = RunningActor(address, **overrides)
        started.append(actor)
        return actor

    yield start
    for actor in started:
        actor.close()


def metric(registry, name: str, labels: dict | None = None) -> float:
    value = registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value
