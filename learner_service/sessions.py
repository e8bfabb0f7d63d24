"""Who is connected, and the newest weights every connected actor's stream should send next.

Each actor's stream has its own sender, which takes the newest published version whenever it is free:
a busy or slow actor skips intermediate versions instead of queueing them, and never misses the last.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

import grpc

from learner_service.rejections import Reason, Rejection
from relayrl.v1 import relayrl_pb2 as pb


@dataclass
class Session:
    index: int
    actor_id: str
    run_id: str
    peer: str
    sent_version: int = -1
    received: int = 0  # valid contributions decoded from this stream
    accepted: int = 0  # of those, handed to the coordinator
    consumed: int = 0  # of those, how many the trainer applied or dropped
    acked: int = 0  # the consumed count last sent back in an Ack
    closed: bool = False
    failure: Rejection | None = None


class WeightsBoard:
    """The newest LearnerMessage(weights) by version, plus a stop notice once the learner stops.

    ``finished`` tells the two kinds of stop apart: training is over (streams send Stop and actors exit),
    or the learner is going away (SIGTERM; streams end with UNAVAILABLE and actors reconnect to the next).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.version = -1
        self.message: pb.LearnerMessage | None = None
        self.payload = b""
        self.published_at = 0.0
        self.stop_message: pb.LearnerMessage | None = None
        self.finished = True

    def publish(self, version: int, message: pb.LearnerMessage) -> None:
        payload = message.SerializeToString()  # once per version, not once per actor stream
        with self._cond:
            self.version, self.message, self.payload = version, message, payload
            self.published_at = time.monotonic()
            self._cond.notify_all()

    def snapshot(self) -> tuple[int, pb.LearnerMessage | None]:
        """The newest (version, LearnerMessage(weights)), read together: one consistent pair."""
        with self._cond:
            return self.version, self.message

    def stop(self, reason: str, finished: bool = True) -> None:
        with self._cond:
            self.stop_message = pb.LearnerMessage(stop=pb.Stop(reason=reason))
            self.finished = finished
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def acknowledge(self, session: Session) -> None:
        """One of ``session``'s contributions was applied or dropped: its sender owes it an Ack."""
        with self._cond:
            session.consumed += 1
            self._cond.notify_all()

    def next_for(self, session: Session, timeout: float) -> tuple[pb.LearnerMessage | bytes, float | None] | None:
        """Block until ``session`` is owed something: newer weights (first), an Ack, or the stop notice.

        Returns (message, published_at; None for an Ack) or None when nothing came within ``timeout``.
        Weights come as the serialized LearnerMessage, shared by every stream.
        """
        with self._cond:
            ready = self._cond.wait_for(
                lambda: (
                    session.closed
                    or self.stop_message is not None
                    or self.version > session.sent_version
                    or session.consumed > session.acked
                ),
                timeout=timeout,
            )
            if not ready or session.closed:
                return None
            # Acks owed go out before the stop notice: an actor must not deliver again what was applied.
            if self.stop_message is not None and session.consumed <= session.acked:
                return self.stop_message, time.monotonic()
            if self.version > session.sent_version and self.stop_message is None:
                session.sent_version = self.version
                return self.payload, self.published_at
            session.acked = session.consumed
            return pb.LearnerMessage(ack=pb.Ack(consumed=session.acked)), None


class Registry:
    """Live sessions, one per actor id.

    A Hello with the run id of the actor's open stream is that same process reconnecting (after a network
    cut it may notice first): the stale stream is closed and replaced. A different run id while the
    actor's stream is open is a second process using the same actor id: it is refused (ALREADY_EXISTS)
    and the first keeps its stream, so two misconfigured actors cannot keep knocking each other off. A
    restarted actor is let in as soon as its old stream has ended: at once after a crash (the kernel
    resets the connection), within about 2 x --keepalive-seconds when its host vanished.
    """

    def __init__(self, board: WeightsBoard, first: int = 0, step: int = 1) -> None:
        self._lock = threading.Lock()
        self._board = board
        self._by_actor: dict[str, Session] = {}
        # Session indices, which actors seed their envs from: rank r of N data-parallel learners hands out
        # r, r + N, r + 2N, ... so that no two actors of the group collect the same episodes.
        self._counter = itertools.count(first, step)
        self.peak = 0

    def join(self, hello: pb.Hello, peer: str) -> tuple[Session, Session | None]:
        """Register a session; returns it and the stale stream of the same process it replaced, if any."""
        with self._lock:
            old = self._by_actor.get(hello.actor_id)
            if old is not None and not old.closed and old.run_id != hello.run_id:
                raise Rejection(
                    grpc.StatusCode.ALREADY_EXISTS,
                    Reason.DUPLICATE_ACTOR,
                    f"actor id {hello.actor_id!r} is in use by another connected process",
                )
            session = Session(next(self._counter), hello.actor_id, hello.run_id, peer)
            self._by_actor[hello.actor_id] = session
            stale = old if old is not None and not old.closed else None
            if stale is not None:
                stale.closed = True
            self.peak = max(self.peak, self._live_count())
        if stale is not None:
            self._board.wake()
        return session, stale

    def leave(self, session: Session) -> None:
        with self._lock:
            session.closed = True
            if self._by_actor.get(session.actor_id) is session:
                del self._by_actor[session.actor_id]
        self._board.wake()

    def _live_count(self) -> int:
        return sum(1 for s in self._by_actor.values() if not s.closed)

    def live_count(self) -> int:
        with self._lock:
            return self._live_count()
