"""Prometheus plumbing shared by both services: a registry per service and its HTTP endpoint."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from relayrl import __version__

log = logging.getLogger(__name__)

# Bucket bounds in versions for policy-lag histograms, in seconds for latency histograms.
LAG_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64)
RETURN_BUCKETS = (-500, -200, -100, -50, 0, 10, 50, 100, 200, 300, 400, 475, 500, 1000)
LENGTH_BUCKETS = (10, 25, 50, 100, 200, 300, 400, 500, 1000)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def build_info(registry: CollectorRegistry, service: str, algo: str = "", env: str = "") -> Gauge:
    gauge = Gauge(
        "relayrl_build_info",
        "RelayRL build and run identity (always 1).",
        ["version", "service", "algo", "env"],
        registry=registry,
    )
    gauge.labels(__version__, service, algo, env).set(1)
    return gauge


def episode_metrics(registry: CollectorRegistry, source: str) -> tuple[Counter, Histogram, Histogram]:
    """The episode counter and the return and length histograms both services export, under the same names
    and buckets (so one dashboard query reads either); ``source`` says where the episodes come from."""
    return (
        Counter("relayrl_episodes", f"Episodes {source}.", registry=registry),
        Histogram("relayrl_episode_return", f"Returns of episodes {source}.", buckets=RETURN_BUCKETS,
                  registry=registry),
        Histogram("relayrl_episode_length", f"Lengths of episodes {source}.", buckets=LENGTH_BUCKETS,
                  registry=registry),
    )


def serve(registry: CollectorRegistry, host: str, port: int) -> Any:
    """Expose /metrics on host:port (0 picks a free port); a negative port disables it. Returns the server."""
    if port < 0:
        return None
    server, _ = start_http_server(port, addr=host, registry=registry)
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server
