"""Load on one learner process: N light A3C clients send gradients over their own channels for a while.

Each client keeps up to ``window`` contributions unacknowledged (real actors keep one) and measures the
time from handing a gradient to gRPC to the learner's Ack covering it (the learner acks once it has
applied the contribution or counted it as dropped). At the end the clients stop sending and wait for
their last Acks, so every contribution can be matched: sent = acked = applied + dropped.

    python -m tests.e2e.loadgen --clients 32 --seconds 20     # prints the figures
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from relayrl import codec
from relayrl.v1 import relayrl_pb2 as pb
from tests.clients import CONNECT
from tests.faults import Proc, free_port


@dataclass
class Schedule:
    """When the clients stop sending: an upper bound at first, set once the measurement has started."""

    until: float


@dataclass
class Client:
    """One stream: sends the same small noise as its gradient, at the newest version it has seen."""

    address: str
    window: int = 1
    sent: int = 0
    acked: int = 0
    latencies: list[float] = field(default_factory=list)
    error: str | None = None

    def run(self, schedule: Schedule, drain_timeout: float) -> None:
        channel = grpc.insecure_channel(self.address)
        outbox: list = []
        cond = threading.Condition()
        rng = np.random.default_rng()

        def requests():
            while True:
                with cond:
                    cond.wait_for(lambda: outbox)
                    message = outbox.pop(0)
                if message is None:
                    return
                yield message

        def put(message) -> None:
            with cond:
                outbox.append(message)
                cond.notify()

        connect = channel.stream_stream(
            CONNECT,
            request_serializer=pb.ActorMessage.SerializeToString,
            response_deserializer=pb.LearnerMessage.FromString,
        )
        hello = pb.Hello(proto_version=pb.PROTO_VERSION_CURRENT, actor_id=uuid.uuid4().hex, run_id=uuid.uuid4().hex)
        put(pb.ActorMessage(hello=hello))
        # no client hangs: the schedule's end only ever moves earlier than it is now
        call = connect(requests(), timeout=schedule.until - time.monotonic() + drain_timeout + 5)
        sent_at: dict[int, float] = {}
        try:
            welcome = next(call).welcome
            version = welcome.weights.version
            shapes = {t.name: tuple(t.tensor.shape) for t in welcome.weights.tensors}
            grads = codec.encode_named({n: rng.normal(0, 1e-3, s).astype(np.float32) for n, s in shapes.items()})
            deadline = None
            while True:
                now = time.monotonic()
                sending = now < schedule.until
                while sending and self.sent - self.acked < self.window:
                    message = pb.ActorMessage(gradient=pb.Gradient(policy_version=version, grads=grads, env_steps=16))
                    self.sent += 1
                    sent_at[self.sent] = time.monotonic()
                    put(message)
                if not sending:
                    deadline = deadline or now + drain_timeout
                    if self.acked == self.sent or now > deadline:
                        break
                reply = next(call)
                kind = reply.WhichOneof("kind")
                if kind == "weights":
                    version = reply.weights.version
                elif kind == "ack":
                    now = time.monotonic()
                    for k in range(self.acked + 1, reply.ack.consumed + 1):
                        self.latencies.append(now - sent_at.pop(k))
                    self.acked = reply.ack.consumed
        except grpc.RpcError as exc:
            self.error = f"{exc.code().name}: {exc.details()}"
        finally:
            put(None)
            call.cancel()
            channel.close()


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f"[{v}]" for v in sample.labels.values())
            out[key] = sample.value
    return out


def rss_mib(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field_name)


def run(
    clients: int = 32,
    seconds: float = 10.0,
    window: int = 2,
    warmup_deadline: float = 60.0,
    queue_size: int = 64,
    max_policy_lag: int = 64,
) -> dict:
    """Start a learner process, load it, stop it; return the figures and the accounting."""
    port, metrics_port = free_port(), free_port()
    learner = Proc(
        *("learner", "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port)),
        *(
            "--algo",
            "a3c",
            "--transport",
            "gradients",
            "--max-policy-lag",
            str(max_policy_lag),
            "--queue-size",
            str(queue_size),
        ),
        *("--log-every", "3600"),
    )
    try:
        learner.wait_for(r"learner \S+ on port", 60)
        address = f"127.0.0.1:{port}"
        load = [Client(address, window=window) for _ in range(clients)]
        schedule = Schedule(time.monotonic() + warmup_deadline + seconds)
        threads = [threading.Thread(target=c.run, args=(schedule, 30.0), daemon=True) for c in load]
        for t in threads:
            t.start()
        # The baseline is taken in steady state, whatever the machine's speed: every stream open with `window`
        # round trips done, so every session exists and clients x window contributions (more than the queue
        # holds) have been applied or dropped.
        warm_by = time.monotonic() + warmup_deadline
        while not all(c.acked >= c.window or c.error for c in load):
            if time.monotonic() > warm_by:
                raise RuntimeError(f"not every client had {window} acks within {warmup_deadline:g}s")
            time.sleep(0.05)
        schedule.until = time.monotonic() + seconds
        rss_before = rss_mib(learner.pid)
        acked_before = sum(c.acked for c in load)
        rss_samples = []
        while time.monotonic() < schedule.until:
            time.sleep(0.5)
            rss_samples.append(rss_mib(learner.pid))
        acked_window = sum(c.acked for c in load) - acked_before
        for t in threads:
            t.join(timeout=60)
        hung = sum(t.is_alive() for t in threads)
        rss_after = rss_mib(learner.pid)
        metrics = scrape(metrics_port)
        latencies = np.array([x for c in load for x in c.latencies])
        learner.signal(signal.SIGTERM)
        exit_code = learner.wait(timeout=30)
    finally:
        learner.stop()
    rejected = sum(v for k, v in metrics.items() if k.startswith("relayrl_rejected_total"))
    return {
        "clients": clients,
        "window": window,
        "seconds": seconds,
        "acks_per_second": round(acked_window / seconds, 1),
        "latency_p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 2),
        "latency_p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 2),
        "rss_before_mib": round(rss_before, 1),
        "rss_after_mib": round(rss_after, 1),
        "rss_max_during_mib": round(max(rss_samples), 1),
        "sent": sum(c.sent for c in load),
        "acked": sum(c.acked for c in load),
        "applied": metrics["relayrl_updates_total"],
        "dropped_stale": metrics["relayrl_dropped_stale_total"],
        "rejected": rejected,
        "client_errors": [c.error for c in load if c.error],
        "hung_clients": hung,
        "learner_exit_code": exit_code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--window", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(run(args.clients, args.seconds, args.window), indent=2))


if __name__ == "__main__":
    main()
