"""HTTP/2 keepalive, set the same way on both ends of the actor-learner stream."""

from __future__ import annotations


def keepalive_options(seconds: float) -> list[tuple[str, int]]:
    """gRPC options for a ping every ``seconds`` that drops a peer not answering within as long again, so a
    silent network cut is noticed within about twice ``seconds``. The ping timeout must be set as well: gRPC
    otherwise waits a minute. Pings go on while no call is open and without data in between."""
    ms = int(seconds * 1000)
    return [
        ("grpc.keepalive_time_ms", ms),
        ("grpc.keepalive_timeout_ms", ms),
        ("grpc.http2.ping_timeout_ms", ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
