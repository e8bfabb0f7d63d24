"""What relayrl_dropped_stale_total counts (the RelayRLStaleDropsHigh alert reads it): contributions dropped
as too old, and nothing else. A duplicate (a second contribution of one actor to an A2C round) is dropped
too, but counted apart, as relayrl_contributions_total{outcome="dropped_duplicate"}. Real learner, real
gRPC, hand-made streams."""

from __future__ import annotations

from relayrl import wire
from relayrl.v1 import relayrl_pb2 as pb
from tests import clients
from tests.conftest import metric, wait_until
from tests.helpers import random_rollout

N_STEPS = 4


def rollout(version: int) -> pb.ActorMessage:
    return pb.ActorMessage(rollout=wire.rollout_to_proto(random_rollout(T=N_STEPS, N=2, version=version)))


def test_duplicates_are_not_counted_as_stale(start_learner):
    learner = start_learner(algo="a2c", n_steps=N_STEPS, round_timeout=60)
    reg = learner.metrics.registry
    first, second = (clients.Stream(clients.channel(learner.address)) for _ in range(2))
    for stream in (first, second):  # two actors in the round: it waits for both (round_timeout is long)
        stream.send(pb.ActorMessage(hello=clients.hello()))
        assert stream.receive().WhichOneof("kind") == "welcome"
    version = learner.board.version
    first.send(rollout(version)).send(rollout(version))  # the same round twice: the second is a duplicate

    def outcome(name: str) -> float:
        return metric(reg, "relayrl_contributions_total", {"outcome": name})

    wait_until(lambda: outcome("dropped_duplicate") == 1, 10, "the duplicate to be dropped")
    assert metric(reg, "relayrl_dropped_stale_total") == 0, "a duplicate is not a stale drop"
    second.send(rollout(version))  # the round completes; then one of the closed round's version is stale
    wait_until(lambda: learner.board.version > version, 10, "the round's update")
    second.send(rollout(version))
    wait_until(lambda: outcome("dropped_stale") == 1, 10, "the stale contribution to be dropped")
    assert metric(reg, "relayrl_dropped_stale_total") == 1 and outcome("dropped_duplicate") == 1
    for stream in (first, second):
        stream.close()
