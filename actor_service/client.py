"""The actor's link to the learner: one long-lived bidirectional stream, a thread that receives
weights as they are broadcast, and jittered exponential backoff between connection attempts.

The channel (``channel_options``, ``open_channel``) is plaintext, or TLS when the actor has a CA or a
client certificate; a bearer token, when configured, travels as call metadata on the stream.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import grpc

from actor_service.config import ActorConfig
from relayrl.keepalive import keepalive_options
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


def channel_options(config: ActorConfig) -> list[tuple[str, int]]:
    """Message limits, keepalive (relayrl.keepalive) and gRPC's own reconnect backoff, which runs inside
    one connection attempt, set from ours."""
    return [
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.max_receive_message_length", config.max_message_bytes),
        *keepalive_options(config.keepalive_seconds),
        ("grpc.initial_reconnect_backoff_ms", int(config.backoff_initial * 1000)),
        ("grpc.max_reconnect_backoff_ms", int(config.backoff_max * 1000)),
    ]


def open_channel(
    address: str,
    options: Sequence[tuple[str, int | str]],
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    server_name: str | None = None,
    tls: bool = False,
) -> grpc.Channel:
    """A channel to the learner: TLS when asked (``tls``) or given a CA or a client certificate, plaintext
    otherwise. The files are read here, at every (re)connection, so a renewed CA or client certificate is
    used from the next connection on."""
    if not tls and tls_ca is None and tls_cert is None:
        return grpc.insecure_channel(address, options=list(options))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(tls_ca).read_bytes() if tls_ca else None,  # None: the system's roots
        private_key=Path(tls_key).read_bytes() if tls_key else None,
        certificate_chain=Path(tls_cert).read_bytes() if tls_cert else None,
    )
    options = list(options)
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(address, credentials, options=options)


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return () if token is None else (("authorization", f"Bearer {token}"),)


def wait_ready(channel: grpc.Channel, timeout: float, stop: threading.Event | None) -> None:
    """Wait for the channel to connect, in short slices so that a stop request is not held up."""
    ready = grpc.channel_ready_future(channel)
    deadline = time.monotonic() + timeout
    while True:
        try:
            ready.result(timeout=min(0.1, max(deadline - time.monotonic(), 0.0)))
            return
        except grpc.FutureTimeoutError:
            if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                ready.cancel()
                raise


class LearnerLink:
    """An open stream: ``welcome`` holds the learner's answer to our Hello."""

    def __init__(
        self,
        channel: grpc.Channel,
        hello: pb.Hello,
        connect_timeout: float,
        metadata: Sequence[tuple[str, str]] = (),
        stop: threading.Event | None = None,
        on_sent: Callable[[], None] = lambda: None,
        on_acked: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._on_sent, self._on_acked = on_sent, on_acked  # the actor's counters, kept live (a kill loses none)
        self._outbox: queue.Queue[pb.ActorMessage | None] = queue.Queue(maxsize=2)
        self._cond = threading.Condition()
        self._latest: pb.Weights | None = None
        self.closed = False
        self.stop_reason: str | None = None
        self.error: grpc.RpcError | None = None
        self.received_bytes = 0
        self.acked = 0  # contributions the learner has consumed (its last Ack)
        self.sent = 0  # contributions gRPC has taken from us (the Hello not counted)
        self.queued = 0  # contributions handed to send()
        wait_ready(channel, connect_timeout, stop)
        self._call = pb_grpc.LearnerStub(channel).Connect(
            self._requests(pb.ActorMessage(hello=hello)), metadata=tuple(metadata) or None
        )
        # A learner that accepts the connection but never answers must not hold us forever.
        deadline = threading.Timer(connect_timeout, self._call.cancel)
        deadline.start()
        try:
            first = next(self._call)
            if first.WhichOneof("kind") != "welcome":
                raise LinkClosed(f"expected a Welcome, got {first.WhichOneof('kind')}")
        except BaseException:
            # End our request iterator too: gRPC's thread would otherwise wait in it forever, one per retry.
            self._outbox.put_nowait(None)
            self._call.cancel()
            raise
        finally:
            deadline.cancel()
        self.welcome = first.welcome
        self._receiver = threading.Thread(target=self._receive, name="weights-receiver", daemon=True)
        self._receiver.start()

    def _requests(self, hello: pb.ActorMessage) -> Iterator[pb.ActorMessage]:
        yield hello
        while True:
            message = self._outbox.get()
            if message is None:
                return
            self.sent += 1
            self._on_sent()
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
                elif kind == "ack":
                    with self._cond:
                        newly, self.acked = message.ack.consumed - self.acked, message.ack.consumed
                        self._cond.notify_all()
                    self._on_acked(newly)
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
                self.queued += 1
                return
            except queue.Full:
                if stop.is_set():
                    raise LinkClosed("stopping") from None

    def wait_acked(self, count: int, stop: threading.Event) -> None:
        """Block until the learner has consumed ``count`` of our contributions; raises if the link closes."""
        with self._cond:
            while self.acked < count:
                if self.closed:
                    raise LinkClosed(self.describe())
                if stop.is_set():
                    raise LinkClosed("stopping")
                self._cond.wait(timeout=0.25)

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
