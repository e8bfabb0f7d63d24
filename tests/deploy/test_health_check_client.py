"""deploy/docker/grpc-health-check.py against a real gRPC health server: the Compose healthchecks rely on it."""

from __future__ import annotations

import socket
import subprocess
import sys
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .conftest import DEPLOY

SCRIPT = DEPLOY / "docker" / "grpc-health-check.py"


@pytest.fixture(scope="module")
def server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("relayrl.v1.Learner", health_pb2.HealthCheckResponse.NOT_SERVING)
    yield f"127.0.0.1:{port}"
    server.stop(0)


def check(*args: str) -> int:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, timeout=30).returncode


def test_reports_serving_and_not_serving(server):
    assert check(server) == 0
    assert check(server, "") == 0
    assert check(server, "relayrl.v1.Learner") == 1


def unused_address() -> str:
    """An address nothing listens on: a port the OS just handed out and took back."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_unknown_service_and_no_server_are_unhealthy(server):
    assert check(server, "no.such.Service") == 1
    assert check(unused_address()) == 1


def test_usage_error():
    assert check() == 2
