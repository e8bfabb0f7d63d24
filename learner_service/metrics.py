"""The learner's Prometheus metrics (one registry per learner, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from learner_service.rejections import Reason
from relayrl.telemetry import LAG_BUCKETS, LATENCY_BUCKETS, build_info, episode_metrics

REJECT_REASONS = tuple(reason.value for reason in Reason)  # relayrl_rejected_total's labels, in order
# relayrl_contributions_total's outcomes: settled (acknowledged to the actor), then discarded (not acknowledged)
SETTLED = ("applied", "dropped_stale", "dropped_duplicate", "non_finite")
DISCARDED = ("discarded_stopping", "abandoned_round")
CONTRIBUTION_OUTCOMES = SETTLED + DISCARDED


class LearnerMetrics:
    def __init__(self, algo: str = "", env: str = "") -> None:
        r = self.registry = CollectorRegistry()
        build_info(r, "learner", algo, env)
        self.updates = Counter("relayrl_updates", "Optimizer steps applied.", registry=r)
        self.samples = Counter("relayrl_samples", "Transitions trained on.", registry=r)
        self.env_steps = Counter("relayrl_env_steps", "Environment steps reported by actors.", registry=r)
        self.episodes, self.episode_return, self.episode_length = episode_metrics(r, "reported by actors")
        self.mean_return = Gauge("relayrl_mean_return_100", "Mean return of the last 100 episodes.", registry=r)
        self.policy_version = Gauge("relayrl_policy_version", "Current policy version.", registry=r)
        # A rank label for every series of this learner, by a join on this one (group.py: data-parallel ranks)
        self.rank = Gauge("relayrl_learner_rank", "This learner's rank among its data-parallel ranks (always 1).",
                          ["rank", "world_size"], registry=r)
        self.set_rank(0, 1)  # a learner alone; data-parallel ranks say theirs (learner.py)
        self.policy_lag = Histogram(
            "relayrl_policy_lag", "Learner version minus the version data came from.", buckets=LAG_BUCKETS, registry=r
        )
        self.update_seconds = Histogram(
            "relayrl_update_seconds", "Time of one update.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.loss = Gauge("relayrl_loss", "Last update's loss terms.", ["term"], registry=r)
        for term in ("policy", "value", "entropy"):
            self.loss.labels(term)
        self.grad_norm = Gauge("relayrl_grad_norm", "Gradient norm before clipping, last update.", registry=r)
        self.actors_connected = Gauge("relayrl_actors_connected", "Actors with an open stream.", registry=r)
        self.broadcast_seconds = Histogram(
            "relayrl_broadcast_seconds",
            "From a new version's publication to its hand-off to an actor's stream.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rejected = Counter("relayrl_rejected", "Messages refused, by reason.", ["reason"], registry=r)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        self.dropped_stale = Counter(
            "relayrl_dropped_stale",
            "Contributions dropped as older than the allowed lag (duplicates are counted apart, by outcome).",
            registry=r,
        )
        # The ledger of contributions (tests/e2e/chaos.py checks it): every one received is settled (applied,
        # or dropped with a reason, and acknowledged), or discarded unapplied and unacknowledged, so that the
        # actor keeps it and delivers it again to the next learner.
        self.contributions_received = Counter(
            "relayrl_contributions_received", "Valid contributions decoded from actors' streams.", registry=r
        )
        self.contributions = Counter(
            "relayrl_contributions", "What became of the contributions received, by outcome.", ["outcome"], registry=r
        )
        for outcome in CONTRIBUTION_OUTCOMES:
            self.contributions.labels(outcome)
        self.checkpoint_seconds = Histogram(
            "relayrl_checkpoint_seconds", "Time to write a checkpoint.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.checkpoint_failures = Counter(
            "relayrl_checkpoint_failures", "Checkpoint writes that failed (retried at the next interval).", registry=r
        )
        # What the actor autoscaler scales on (learner_service/starvation.py).
        self.starvation = Gauge(
            "relayrl_learner_starvation_ratio",
            "Share of the last 10 s the trainer waited for data: 1 starved (more actors help), 0 saturated.",
            registry=r,
        )
        # For the stale-checkpoint alert (deploy/prometheus/rules/relayrl.yml): 0 until this process writes one.
        self.last_checkpoint = Gauge(
            "relayrl_last_checkpoint_timestamp_seconds", "Unix time of the last checkpoint written.", registry=r
        )
        # Evaluation during training (--eval-every): greedy episodes on the learner's own envs
        self.evaluations = Counter("relayrl_evaluations", "Evaluations of the policy during training.", registry=r)
        self.eval_mean_return = Gauge(
            "relayrl_eval_mean_return", "Mean return of the latest evaluation's greedy episodes.", registry=r
        )
        self.eval_best_return = Gauge(
            "relayrl_eval_best_return", "Best evaluation mean return so far (the policy in best.pt).", registry=r
        )
        self.received_bytes = Counter("relayrl_received_bytes", "Bytes of actor messages received.", registry=r)
        self.sent_bytes = Counter("relayrl_sent_bytes", "Bytes of weight messages sent.", registry=r)

    def set_rank(self, rank: int, world_size: int) -> None:
        self.rank.clear()
        self.rank.labels(str(rank), str(world_size)).set(1)
