"""Hand-driven gRPC clients for fault and access tests: typed or raw-bytes streams, with or without TLS and
a bearer token, and a grpc.health.v1 client."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from relayrl.v1 import relayrl_pb2 as pb

CONNECT = "/relayrl.v1.Learner/Connect"
SERVICE = "relayrl.v1.Learner"


def channel(address: str, ca: Path | None = None, cert: Path | None = None, key: Path | None = None) -> grpc.Channel:
    if ca is None and cert is None:
        return grpc.insecure_channel(address)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes() if ca else None,
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    return grpc.secure_channel(address, credentials)


def hello(actor_id: str | None = None, **fields) -> pb.Hello:
    actor_id = uuid.uuid4().hex if actor_id is None else actor_id
    values = dict(proto_version=pb.PROTO_VERSION_CURRENT, actor_id=actor_id, run_id=uuid.uuid4().hex)
    values.update(fields)
    return pb.Hello(**values)


class Stream:
    """One Connect stream that sends whatever it is given: ActorMessages, or raw bytes with ``raw=True``."""

    def __init__(self, ch: grpc.Channel, raw: bool = False, metadata: tuple = (), timeout: float = 30) -> None:
        self.channel = ch
        self._queue: queue.Queue = queue.Queue()
        serializer = (lambda b: b) if raw else pb.ActorMessage.SerializeToString
        method = ch.stream_stream(
            CONNECT, request_serializer=serializer, response_deserializer=pb.LearnerMessage.FromString
        )
        self.call = method(iter(self._queue.get, None), metadata=metadata or None, timeout=timeout)

    def send(self, message) -> Stream:
        self._queue.put(message)
        return self

    def receive(self) -> pb.LearnerMessage:
        return next(self.call)

    def status(self) -> grpc.StatusCode:
        """Read until the stream ends; its final status code (OK when it ended cleanly)."""
        try:
            for _ in self.call:
                pass
        except grpc.RpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    def close(self, channel: bool = True) -> None:
        self._queue.put(None)
        self.call.cancel()
        if channel:
            self.channel.close()


def refusal(ch: grpc.Channel, *messages, raw: bool = False, metadata: tuple = ()) -> tuple[grpc.StatusCode, str]:
    """Send ``messages`` on a fresh stream and return the (code, details) it ends with."""
    stream = Stream(ch, raw=raw, metadata=metadata, timeout=10)
    for message in messages:
        stream.send(message)
    try:
        for _ in stream.call:
            pass
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    finally:
        stream.close(channel=False)


def health(ch: grpc.Channel, service: str = SERVICE, timeout: float = 5) -> int:
    """The serving status (health_pb2.HealthCheckResponse.SERVING, NOT_SERVING, ...)."""
    stub = health_pb2_grpc.HealthStub(ch)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout).status


def watch(ch: grpc.Channel, service: str = SERVICE, timeout: float = 60):
    """A Watch stream: an iterator of statuses as they change (and the current one first)."""
    stub = health_pb2_grpc.HealthStub(ch)
    return (r.status for r in stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=timeout))


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Watcher:
    """Statuses seen on a grpc.health.v1 Watch stream, with the times they arrived."""

    def __init__(self, address: str, service: str = SERVICE) -> None:
        self.seen: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._run, args=(address, service), daemon=True)
        self._thread.start()

    def _run(self, address: str, service: str) -> None:
        try:
            for status in watch(channel(address), service, timeout=120):
                self.seen.append((time.monotonic(), status))
        except Exception:  # noqa: BLE001 - the server going away ends the stream
            pass

    def statuses(self) -> list[int]:
        return [s for _, s in self.seen]
