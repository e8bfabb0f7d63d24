"""The standard gRPC health service (grpc.health.v1.Health), for Kubernetes' native gRPC probes.

A service reports NOT_SERVING until its model is ready, SERVING after, and NOT_SERVING again from the
moment it starts shutting down.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Health:
    """Overall ("") and per-service status, served by one or more gRPC servers (``attach``)."""

    def __init__(self, server: grpc.Server | None, services: tuple[str, ...]) -> None:
        self.servicer = health.HealthServicer()
        self.services = ("", *services)
        if server is not None:
            self.attach(server)
        self.set(False)

    def attach(self, server: grpc.Server) -> None:
        """Serve the same statuses on another (not yet started) server too."""
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    def set(self, serving: bool) -> None:
        for name in self.services:
            self.servicer.set(name, SERVING if serving else NOT_SERVING)

    def shutdown(self) -> None:
        self.servicer.enter_graceful_shutdown()


def serve_health(host: str, port: int, services: tuple[str, ...] = ()) -> tuple[grpc.Server, Health, int] | None:
    """A small plaintext gRPC server carrying only the health service (the actor's; the learner's
    --health-port); negative port disables it."""
    if port < 0:
        return None
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="health"))
    status = Health(server, services)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    if bound:
        log.info("health on %s:%d", host, bound)
    return server, status, bound
