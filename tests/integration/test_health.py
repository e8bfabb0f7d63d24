"""The learner's grpc.health.v1 service through a real client: NOT_SERVING while the model is built,
SERVING while it runs, NOT_SERVING from shutdown on; the same on --health-port and on the gRPC port."""

from __future__ import annotations

import threading

from learner_service.config import LearnerConfig
from learner_service.learner import Learner
from relayrl.config import load
from tests import clients
from tests.conftest import flags, wait_until


def test_learner_health_from_build_to_shutdown():
    config = load(
        LearnerConfig,
        flags(host="127.0.0.1", port=0, metrics_port=-1, health_port=0, hidden_sizes="16,16", log_every=3600),
        environ={},
    )
    learner = Learner(config)  # built, not started: the plaintext health port already answers
    probe = clients.channel(f"127.0.0.1:{learner.health_port}")
    assert clients.health(probe) == clients.NOT_SERVING
    assert clients.health(probe, service="") == clients.NOT_SERVING
    learner.start()
    serving = clients.channel(f"127.0.0.1:{learner.port}")
    for ch in (probe, serving):
        assert clients.health(ch) == clients.SERVING and clients.health(ch, service="") == clients.SERVING
    watcher = clients.Watcher(f"127.0.0.1:{learner.health_port}")
    wait_until(lambda: watcher.statuses() == [clients.SERVING], 10, "the watch to start")
    serve = threading.Thread(target=learner.serve, daemon=True)
    serve.start()
    learner.stop.set()  # what SIGTERM does
    serve.join(timeout=30)
    assert watcher.statuses()[-1] == clients.NOT_SERVING, watcher.statuses()
