"""The actor's link to the learner: one long-lived bidirectional stream, a thread that receives
weights as they are broadcast, and jittered exponential backoff between connection attempts."""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Iterator

import grpc

from relayrl.v1 import relayrl_pb2 as pb
from relayrl.v1 import relayrl_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class LinkClosed(Exception):
    """The stream to the learner ended; reconnect."""


class Backoff:
    """Exponential backoff with full jitter, capped: delays are uniform in [d/2, d], d doubling to ``maximum``."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial, self.maximum = initial, maximum
        self._next = initial
        self._rng = rng or random.Random()

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return self._rng.uniform(delay / 2, delay)

    def reset(self) -> None:
        self._next = self.initial


class LearnerLink:
    """An open stream: ``welcome`` holds the learner's answer to our Hello."""

    def __init__(self, channel: grpc.Channel, hello: pb.Hello, connect_timeout: float) -> None:
        self._outbox: queue.Queue[pb.ActorMessage | None] = queue.Queue(maxsize=2)
        self._cond = threading.Condition()
        self._latest: pb.Weights | None = None
        self.closed = False
        self.stop_reason: str | None = None
        self.error: grpc.RpcError | None = None
        self.received_bytes = 0
        grpc.channel_ready_future(channel).result(timeout=connect_timeout)
        self._call = pb_grpc.LearnerStub(channel).Connect(self._requests(pb.ActorMessage(hello=hello)))
        first = next(self._call)
        if first.WhichOneof("kind") != "welcome":
            self._call.cancel()
            raise LinkClosed(f"expected a Welcome, got {first.WhichOneof('kind')}")
        self.welcome = first.welcome
        self._receiver = threading.Thread(target=self._receive, name="weights-receiver", daemon=True)
        self._receiver.start()

    def _requests(self, hello: pb.ActorMessage) -> Iterator[pb.ActorMessage]:
        yield hello
        while True:
            message = self._outbox.get()
            if message is None:
                return
            yield message

    def _receive(self) -> None:
        try:
            for message in self._call:
                kind = message.WhichOneof("kind")
                if kind == "weights":
                    with self._cond:
                        self.received_bytes += message.ByteSize()
                        self._latest = message.weights
                        self._cond.notify_all()
                elif kind == "stop":
                    self.stop_reason = message.stop.reason or "stopped"
                    break
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def send(self, message: pb.ActorMessage, stop: threading.Event) -> None:
        """Queue a message for the stream; blocks while the learner applies backpressure."""
        while True:
            if self.closed:
                raise LinkClosed(self.describe())
            try:
                self._outbox.put(message, timeout=0.1)
                return
            except queue.Full:
                if stop.is_set():
                    raise LinkClosed("stopping") from None

    def take_weights(self, newer_than: int, wait: float = 0.0) -> pb.Weights | None:
        """The newest weights above version ``newer_than``, waiting up to ``wait`` seconds; raises if closed."""
        with self._cond:
            self._cond.wait_for(
                lambda: self.closed or (self._latest is not None and self._latest.version > newer_than),
                timeout=wait,
            )
            if self._latest is not None and self._latest.version > newer_than:
                latest, self._latest = self._latest, None
                return latest
            if self.closed:
                raise LinkClosed(self.describe())
            return None

    def describe(self) -> str:
        if self.stop_reason:
            return f"learner finished training ({self.stop_reason})"
        if self.error is not None:
            return f"{self.error.code().name}: {self.error.details()}"
        return "stream closed"

    def close(self, grace: float = 2.0) -> None:
        """Half-close our side so the message in flight still goes out, let the learner end the stream,
        then cancel whatever is left."""
        try:
            self._outbox.put(None, timeout=grace)
        except queue.Full:
            pass
        self._receiver.join(timeout=grace)
        self._call.cancel()
