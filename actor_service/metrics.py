"""The actor's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from relayrl.telemetry import LATENCY_BUCKETS, build_info, episode_metrics


class ActorMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.build_info = build_info(r, "actor")
        self.env_steps = Counter("relayrl_env_steps", "Environment steps taken.", registry=r)
        self.episodes, self.episode_return, self.episode_length = episode_metrics(r, "finished")
        self.rollout_seconds = Histogram(
            "relayrl_rollout_seconds", "Time to collect one rollout.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.policy_version = Gauge("relayrl_policy_version", "Version of the local policy copy.", registry=r)
        self.learner_connected = Gauge(
            "relayrl_learner_connected", "1 while the stream to the learner is open.", registry=r
        )
        self.reconnects = Counter("relayrl_reconnects", "Connections made after the first.", registry=r)
        self.sent_bytes = Counter("relayrl_sent_bytes", "Bytes of rollouts or gradients sent.", registry=r)
        self.received_bytes = Counter("relayrl_received_bytes", "Bytes of weights received.", registry=r)
