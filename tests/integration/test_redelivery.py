"""An actor keeps its last unacknowledged contribution when the learner goes away, and delivers it to the
learner that answers next, or counts it given up with a reason (issue 15, item 3).

The actor is the real one over real gRPC; the learner is scripted so that the states are exact: it welcomes
the actor at a chosen policy version, takes what the actor may send without an Ack (one A2C contribution, then
the actor waits for weights; A3C_IN_FLIGHT A3C ones, then it waits for an Ack), acknowledges none and dies
(UNAVAILABLE, as a killed learner's stream ends), then welcomes it again at another version. The Welcome
is a real learner's, captured once."""

from __future__ import annotations

import contextlib
import queue
import threading
from concurrent import futures

import grpc
import pytest

from actor_service.actor import A3C_IN_FLIGHT
from relayrl import wire
from relayrl.v1 import relayrl_pb2 as pb
from relayrl.v1 import relayrl_pb2_grpc as pb_grpc
from tests.conftest import RunningLearner, metric, wait_until
from tests.helpers import RawActor, random_rollout


class DyingLearner(pb_grpc.LearnerServicer):
    """Welcomes at the next of ``versions``, records the first ``takes`` contributions of each stream, then dies."""

    def __init__(self, welcome: pb.Welcome, versions: list[int], takes: int) -> None:
        self.welcome, self.versions, self.takes = welcome, list(versions), takes
        self.received: queue.Queue[tuple[int, pb.ActorMessage]] = queue.Queue()
        self.streams = 0

    def Connect(self, request_iterator, context):  # noqa: N802
        next(request_iterator)  # the Hello
        if not self.versions:
            context.abort(grpc.StatusCode.UNAVAILABLE, "no more learners")
        stream, self.streams = self.streams, self.streams + 1
        welcome = pb.Welcome()
        welcome.CopyFrom(self.welcome)
        welcome.weights.version = self.versions.pop(0)
        yield pb.LearnerMessage(welcome=welcome)
        for _ in range(self.takes):
            self.received.put((stream, next(request_iterator)))
        context.abort(grpc.StatusCode.UNAVAILABLE, "killed")  # no Ack: the actor cannot know what became of it


def captured_welcome(**learner) -> pb.Welcome:
    real = RunningLearner(n_steps=4, **learner)
    try:
        raw = RawActor(real.address)
        welcome = raw.receive().welcome
        raw.close()
    finally:
        real.close()
    return welcome


def serving(scripted: pb_grpc.LearnerServicer) -> tuple[grpc.Server, str]:
    """A scripted learner on a real gRPC server on loopback (port 0): the server and its address."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_LearnerServicer_to_server(scripted, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def version_of(message: pb.ActorMessage) -> int:
    return getattr(message, message.WhichOneof("kind")).policy_version


@pytest.mark.parametrize(
    ("learner", "versions", "outcome"),
    [
        ({"algo": "a3c", "transport": "trajectories"}, [5, 5], "resent"),
        ({"algo": "a3c", "transport": "gradients"}, [5, 7], "resent"),  # older: the learner judges its lag
        ({"algo": "a3c", "transport": "gradients"}, [5, 3], "future_version"),  # the crash lost versions 4 and 5
        ({"algo": "a2c"}, [5, 5], "resent"),  # the resumed learner's round is the one it was made for
        ({"algo": "a2c"}, [5, 6], "stale_version"),
    ],
)
def test_the_last_unacknowledged_contribution_is_delivered_again_or_given_up(start_actor, learner, versions, outcome):
    takes = A3C_IN_FLIGHT if learner["algo"] == "a3c" else 1
    scripted = DyingLearner(captured_welcome(**learner), versions, takes)
    server, address = serving(scripted)
    try:
        actor = start_actor(address, actor_id="keeper")
        firsts = [scripted.received.get(timeout=60) for _ in range(takes)]
        second_stream, second = scripted.received.get(timeout=60)
        reg = actor.metrics.registry
        wait_until(
            lambda: metric(reg, "relayrl_contributions_unacked_total", {"cause": "learner_gone"}) >= 2 * takes
            and metric(reg, "relayrl_contributions_given_up_total", {"reason": "superseded"}) >= 2 * (takes - 1),
            10,
            "both streams to end",
        )
    finally:
        server.stop(0)
    assert [stream for stream, _ in firsts] + [second_stream] == [0] * takes + [1]
    last = firsts[-1][1]
    assert version_of(last) == versions[0]
    assert metric(reg, "relayrl_contributions_sent_total") == 2 * takes, "none sent beyond the unacknowledged window"
    assert metric(reg, "relayrl_contributions_acked_total") == 0
    # only the last unacknowledged contribution of a stream is kept: the others are given up as superseded
    assert metric(reg, "relayrl_contributions_given_up_total", {"reason": "superseded"}) == 2 * (takes - 1)
    if outcome == "resent":
        assert second.SerializeToString() == last.SerializeToString(), "the last contribution, delivered again"
        assert metric(reg, "relayrl_contributions_resent_total") == 1
    else:
        assert version_of(second) == versions[1], "a new contribution, made with the new learner's weights"
        assert metric(reg, "relayrl_contributions_resent_total") == 0
        assert metric(reg, "relayrl_contributions_given_up_total", {"reason": outcome}) == 1


class AckingLearner(pb_grpc.LearnerServicer):
    """Welcomes once, records every contribution, and acknowledges only what the test hands to ``acks``."""

    def __init__(self, welcome: pb.Welcome) -> None:
        self.welcome = welcome
        self.received: queue.Queue[pb.ActorMessage] = queue.Queue()
        self.acks: queue.Queue[int] = queue.Queue()

    def Connect(self, request_iterator, context):  # noqa: N802
        next(request_iterator)  # the Hello
        yield pb.LearnerMessage(welcome=self.welcome)
        threading.Thread(target=self._read, args=(request_iterator,), daemon=True).start()
        while context.is_active():
            with contextlib.suppress(queue.Empty):
                yield pb.LearnerMessage(ack=pb.Ack(consumed=self.acks.get(timeout=0.1)))

    def _read(self, request_iterator) -> None:
        with contextlib.suppress(grpc.RpcError):  # the stream's end, when the test stops the server
            for message in request_iterator:
                self.received.put(message)


def test_an_a3c_actor_sends_its_next_contribution_before_the_ack_but_no_further(start_actor):
    """A3C flow control: A3C_IN_FLIGHT contributions go out unacknowledged (the learner finds the next one queued
    when its update ends), and the one after that waits for the first one's Ack."""
    scripted = AckingLearner(captured_welcome(algo="a3c", transport="trajectories"))
    server, address = serving(scripted)
    try:
        actor = start_actor(address, actor_id="window")
        reg = actor.metrics.registry
        first = [scripted.received.get(timeout=60) for _ in range(A3C_IN_FLIGHT)]
        wait_until(lambda: metric(reg, "relayrl_rollout_seconds_count") > A3C_IN_FLIGHT, 30,
                   "the actor to collect the contribution after the window")
        with pytest.raises(queue.Empty):  # it goes out at once if the window lets it (milliseconds)
            scripted.received.get(timeout=2.0)
        scripted.acks.put(1)
        after_ack = scripted.received.get(timeout=30)
    finally:
        server.stop(0)
    assert [version_of(m) for m in first] == [0] * A3C_IN_FLIGHT  # made with the Welcome's weights
    assert after_ack.WhichOneof("kind") == "rollout"
    assert metric(reg, "relayrl_contributions_acked_total") == 1


def test_a_learner_stopping_with_an_a2c_round_open_counts_it_unapplied_and_unacknowledged():
    """SIGTERM's path (Learner.shutdown) with a round half in: the rollout is counted abandoned_round, never
    applied, and its actor gets no Ack for it, so it delivers it again to the next learner."""
    learner = RunningLearner(algo="a2c", n_steps=5, round_timeout=600, shutdown_grace=1)
    a, b = RawActor(learner.address, "a"), RawActor(learner.address, "b")  # b never delivers: the round stays open
    try:
        assert a.receive().HasField("welcome") and b.receive().HasField("welcome")
        a.send(pb.ActorMessage(rollout=wire.rollout_to_proto(random_rollout(T=5, N=3, version=0))))
        wait_until(lambda: learner.coordinator.depth() == 1, 30, "the rollout to wait in the open round")
        learner.close()
        kinds = []
        with contextlib.suppress(grpc.RpcError, StopIteration):
            while True:
                kinds.append(a.receive().WhichOneof("kind"))
    finally:
        a.close()
        b.close()
    reg = learner.metrics.registry
    assert metric(reg, "relayrl_contributions_received_total") == 1
    assert metric(reg, "relayrl_contributions_total", {"outcome": "abandoned_round"}) == 1
    assert metric(reg, "relayrl_contributions_total", {"outcome": "applied"}) == 0
    assert "ack" not in kinds, kinds
