"""`relayrl actor` / `python -m actor_service`: read the configuration, serve /metrics and health, run the
actor (actor.py) until the learner stops it or SIGTERM/SIGINT arrives."""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence

import numpy as np

from actor_service.actor import Actor
from actor_service.config import ActorConfig
from relayrl import telemetry
from relayrl.config import config_errors_exit_2, service_config
from relayrl.health import serve_health

log = logging.getLogger("relayrl.actor")


@config_errors_exit_2("relayrl actor")
def main(argv: Sequence[str] | None = None) -> int:
    config = service_config(
        ActorConfig, argv, "actor", "A RelayRL actor: steps environments and streams to the learner."
    )
    actor = Actor(config)
    metrics_server = telemetry.serve(actor.metrics.registry, config.metrics_host, config.metrics_port)
    health = serve_health(config.metrics_host, config.health_port)
    if health is not None:
        actor.health = health[1]

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: finishing the message in flight, then exiting", signum)
        if actor.health is not None:
            actor.health.shutdown()
        actor.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    np.seterr(all="ignore")
    code = actor.run()
    log.info("exiting: %d contributions sent", actor.sent)
    if metrics_server is not None:
        metrics_server.shutdown()
    if health is not None:
        health[0].stop(1)
    return code
