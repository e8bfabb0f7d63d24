"""The actor's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from relayrl.telemetry import LATENCY_BUCKETS, build_info, episode_metrics

# Why a stream ended (relayrl_contributions_unacked_total's causes): the learner died or the network dropped
# the link, the learner is stopping (SIGTERM), it refused a message, this actor is stopping, training is over.
LINK_END_CAUSES = ("learner_gone", "learner_stopping", "rejected", "actor_stopping", "finished")
# Why a kept contribution was not delivered again (relayrl_contributions_given_up_total's reasons): an older
# one than the last (only the last is kept), made with weights the resumed learner never had (lost with a
# crash), not the resumed learner's A2C round, a new run, or the actor exiting.
GIVE_UP_REASONS = ("superseded", "future_version", "stale_version", "new_run", "actor_exit")


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
        # The actor's side of the ledger of contributions (tests/e2e/chaos.py checks it against the learner's).
        self.contributions_sent = Counter(
            "relayrl_contributions_sent", "Contributions taken onto the stream (deliveries again included).", registry=r
        )
        self.contributions_acked = Counter(
            "relayrl_contributions_acked",
            "Contributions a learner acknowledged (it applied or dropped them).",
            registry=r,
        )
        self.contributions_unacked = Counter(
            "relayrl_contributions_unacked",
            "Contributions sent but not acknowledged when their stream ended, by why it ended.",
            ["cause"],
            registry=r,
        )
        for cause in LINK_END_CAUSES:
            self.contributions_unacked.labels(cause)
        self.contributions_resent = Counter(
            "relayrl_contributions_resent",
            "Unacknowledged contributions kept over a lost stream and delivered again on the next.",
            registry=r,
        )
        self.contributions_given_up = Counter(
            "relayrl_contributions_given_up",
            "Unacknowledged contributions the actor dropped itself, by reason.",
            ["reason"],
            registry=r,
        )
        for reason in GIVE_UP_REASONS:
            self.contributions_given_up.labels(reason)
