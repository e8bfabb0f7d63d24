#!/usr/bin/env python3
"""Exit 0 when the gRPC health service at ADDRESS reports SERVING for SERVICE, else 1.

Usage: grpc-health-check HOST:PORT [SERVICE]   (SERVICE "" or omitted: the server as a whole)

The images carry this for Compose healthchecks; Kubernetes uses its native `grpc:` probes instead.
It imports only grpcio and grpcio-health-checking, which the services need anyway.
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT_SECONDS = 3.0


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    address, service = argv[1], (argv[2] if len(argv) == 3 else "")
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_SECONDS)
    except grpc.RpcError as exc:
        print(f"{address} {service!r}: {exc.code().name}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address} {service!r}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
