"""The chaos soak's books (tests/e2e/chaos.py): what every service process counted, read back from the
memory-mapped files prometheus_client's multiprocess mode keeps them in, exact even after a SIGKILL.

What "accounted for" means across faults. Each contribution an actor hands to its stream is counted sent
there, and then, from the actor's side, either acknowledged by a learner (which applied it or dropped it,
and counted which) or still unacknowledged when its stream ended, counted by why the stream ended (the
learner killed or cut off, the learner stopping, a refusal, the actor stopping). The actor keeps the last
unacknowledged one and delivers it to the next learner or counts it given up with a reason. The learner
counts each contribution it decoded (received) and its outcome: applied, dropped (stale, duplicate,
non-finite), or not applied and not acknowledged (it arrived while the learner stopped, or sat in an A2C
round still open at shutdown), so that its actor delivers it again. A learner killed with contributions in
its queue or half-way through an update leaves them pending: lost to the crash, with the updates since its
last checkpoint, and delivered again by their actors (at least once: an update the kill caught between its
checkpoint and its Ack is applied twice).

The sums then tie together: sent = received + refused + lost in transport (taken by the actor's gRPC and
never decoded: the link went down under it), and settled = acknowledged + acks lost (the Ack was sent
after the link or the actor went). Both remainders must be non-negative; a learner that stopped in order
must have settled or discarded everything it received; a killed one can hold at most its queue and one
round; no stream may end with more unacknowledged than an actor keeps in flight. A contribution dropped
without being counted breaks one of these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

SETTLED = ("applied", "dropped_stale", "dropped_duplicate", "non_finite")
DISCARDED = ("discarded_stopping", "abandoned_round")
HELLO_REFUSALS = {"duplicate_actor", "wrong_env", "wrong_proto_version", "unauthenticated"}  # not contributions
STREAM_END = re.compile(r"stream ended \((\w+)\): (\d+) contributions sent, (\d+) acknowledged, (\d+) unacknowledged")


def read_samples(directory: Path, pid: int | None = None) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """What one process wrote to its multiprocess directory: sample name -> {sorted labels: value}. ``pid``: only
    that process's files, where several wrote to one directory (a learner's ranks, and their restarts)."""
    if pid is None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(directory))
        families = registry.collect()
    else:
        families = MultiProcessCollector.merge([str(f) for f in directory.glob(f"*_{pid}.db")], accumulate=True)
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in families:
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "pid"))
            out.setdefault(sample.name, {})[labels] = sample.value
    return out


def pids(directory: Path) -> list[int]:
    """The processes that wrote to a multiprocess directory (its files are named kind_pid.db)."""
    return sorted({int(m.group(1)) for f in directory.glob("*.db") if (m := re.search(r"_(\d+)\.db$", f.name))})


def value(samples: dict, name: str, default: float | None = 0.0) -> float | None:
    """An unlabelled sample's value (the newest process's, for a gauge)."""
    values = samples.get(name)
    return default if not values else next(iter(values.values()))


def by_label(samples: dict, name: str) -> dict[str, int]:
    return {labels[0][1]: int(v) for labels, v in samples.get(name, {}).items() if labels}


@dataclass
class ActorBooks:
    name: str
    ended: str  # how the process ended: "SIGKILL", "SIGTERM" (in order), "SIGTERM at start-up" (chaos.py)
    sent: int
    acked: int
    resent: int
    unacked: dict[str, int]
    given_up: dict[str, int]
    stream_ends: list[tuple[str, int]] = field(default_factory=list)  # (cause, unacknowledged) per stream

    @classmethod
    def read(cls, name: str, ended: str, directory: Path, log: str) -> ActorBooks:
        s = read_samples(directory)
        return cls(
            name,
            ended,
            int(value(s, "relayrl_contributions_sent_total")),
            int(value(s, "relayrl_contributions_acked_total")),
            int(value(s, "relayrl_contributions_resent_total")),
            by_label(s, "relayrl_contributions_unacked_total"),
            by_label(s, "relayrl_contributions_given_up_total"),
            [(m.group(1), int(m.group(4))) for m in STREAM_END.finditer(log)],
        )

    @property
    def in_flight(self) -> int:
        """Sent on the stream open at the process's end and not acknowledged (0 after an orderly exit)."""
        return self.sent - self.acked - sum(self.unacked.values())

    @property
    def kept(self) -> int:
        """Kept to deliver again when the process ended (0 after an orderly exit)."""
        return sum(self.unacked.values()) - self.resent - sum(self.given_up.values())


@dataclass
class LearnerBooks:
    name: str
    ended: str
    received: int
    outcomes: dict[str, int]
    refused: dict[str, int]

    @classmethod
    def read(cls, name: str, ended: str, directory: Path, pid: int | None = None) -> LearnerBooks:
        s = read_samples(directory, pid)
        refused = {k: v for k, v in by_label(s, "relayrl_rejected_total").items() if v}
        return cls(
            name,
            ended,
            int(value(s, "relayrl_contributions_received_total")),
            by_label(s, "relayrl_contributions_total"),
            refused,
        )

    @property
    def settled(self) -> int:
        return sum(self.outcomes.get(k, 0) for k in SETTLED)

    @property
    def discarded(self) -> int:
        return sum(self.outcomes.get(k, 0) for k in DISCARDED)

    @property
    def pending(self) -> int:
        """Received and neither settled nor discarded: in the queue or an update when the process died."""
        return self.received - self.settled - self.discarded

    @property
    def refused_contributions(self) -> int:
        return sum(v for k, v in self.refused.items() if k not in HELLO_REFUSALS)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def check_books(
    actors: list[ActorBooks], learners: list[LearnerBooks], max_in_flight: int, max_pending: int
) -> tuple[list[Check], dict[str, int]]:
    """The accounting invariants, and the totals they were computed from."""
    checks: list[Check] = []
    sent, acked = sum(a.sent for a in actors), sum(a.acked for a in actors)
    received, settled = sum(lr.received for lr in learners), sum(lr.settled for lr in learners)
    refused = sum(lr.refused_contributions for lr in learners)
    totals = {
        "sent (actors)": sent,
        "acknowledged (actors)": acked,
        "delivered again (actors)": sum(a.resent for a in actors),
        "received (learners)": received,
        "applied (learners)": sum(lr.outcomes.get("applied", 0) for lr in learners),
        "dropped stale/duplicate/non-finite (learners)": settled
        - sum(lr.outcomes.get("applied", 0) for lr in learners),
        "discarded while stopping / round left open (learners)": sum(lr.discarded for lr in learners),
        "pending at a learner kill (lost to the crash)": sum(lr.pending for lr in learners if lr.ended != "SIGTERM"),
        "refused contributions (learners)": refused,
        "lost in transport (sent - received - refused)": sent - received - refused,
        "acks lost (settled - acknowledged)": settled - acked,
    }
    for cause in sorted({c for a in actors for c in a.unacked}):
        totals[f"unacknowledged at a stream's end: {cause}"] = sum(a.unacked.get(cause, 0) for a in actors)
    for reason in sorted({r for a in actors for r in a.given_up}):
        totals[f"given up by actors: {reason}"] = sum(a.given_up.get(reason, 0) for a in actors)
    checks.append(
        Check("nothing refused", refused == 0, f"{refused} contributions refused: {[lr.refused for lr in learners]}")
    )
    lost = sent - received - refused
    checks.append(Check("no learner received more than was sent", lost >= 0, f"lost in transport = {lost}"))
    checks.append(Check("no Ack for what was not settled", settled - acked >= 0, f"acks lost = {settled - acked}"))
    for lr in learners:
        bound = 0 if lr.ended == "SIGTERM" else max_pending
        checks.append(
            Check(
                f"{lr.name} settled what it received",
                0 <= lr.pending <= bound,
                f"received {lr.received} = settled {lr.settled} + discarded {lr.discarded} + pending {lr.pending} "
                f"(ended by {lr.ended}; at most {bound} pending)",
            )
        )
    for a in actors:
        bound = 0 if a.ended == "SIGTERM" else max_in_flight
        worst = max((n for _, n in a.stream_ends), default=0)
        bad_causes = sorted({c for c, n in a.stream_ends if n and c in ("finished", "rejected")})
        checks.append(
            Check(
                f"{a.name} books balance",
                0 <= a.in_flight <= bound
                and 0 <= a.kept <= (0 if a.ended == "SIGTERM" else 1)
                and worst <= max_in_flight
                and not bad_causes,
                f"sent {a.sent} = acked {a.acked} + unacked at stream ends {sum(a.unacked.values())} + in flight "
                f"{a.in_flight}; kept {a.kept}; most unacknowledged at one stream end {worst} (at most "
                f"{max_in_flight}){'; unexplained ends: ' + ','.join(bad_causes) if bad_causes else ''}",
            )
        )
    return checks, totals
