"""The gRPC server the learner's servicer runs in: message limits, keepalive, the bearer token, TLS, the port."""

from __future__ import annotations

import logging
from concurrent import futures

import grpc

from learner_service import security
from learner_service.config import LearnerConfig
from learner_service.metrics import LearnerMetrics
from learner_service.rejections import Reason
from learner_service.server import SERVICE, LearnerServicer
from relayrl.config import ConfigError, describe
from relayrl.health import Health
from relayrl.keepalive import keepalive_options

log = logging.getLogger("relayrl.learner")


def receive_limit(max_message_bytes: int) -> int:
    """gRPC's hard receive limit: above --max-message-bytes so that oversized messages reach (and are
    counted by) server.decode_message, bounded so that no peer can make the learner buffer more."""
    return 2 * max_message_bytes


def grpc_options(max_message_bytes: int, keepalive_seconds: float = 10.0) -> list[tuple[str, int]]:
    """The server's options: message limits set deliberately (the receive limit is above
    --max-message-bytes so that oversized messages are counted, see server.py), keepalive
    (relayrl.keepalive), and actors' own pings accepted down to once a second (gRPC's default policy would
    answer a ping every 10 s on an idle stream with GOAWAY "too_many_pings"). Keep --keepalive-seconds above
    the time the largest message takes on the slowest link: a ping's answer can queue behind it."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", receive_limit(max_message_bytes)),
        *keepalive_options(keepalive_seconds),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 1_000),
        ("grpc.http2.max_ping_strikes", 2),
    ]


def bind_server(
    config: LearnerConfig, servicer: LearnerServicer, health: Health, metrics: LearnerMetrics
) -> tuple[grpc.Server, int]:
    """The server (not started) serving ``servicer`` and ``health``, bound to --host:--port with TLS when
    configured and the bearer-token check when --auth-token is set; returns it and the bound port."""
    interceptors = []
    if config.auth_token is not None:
        refused = metrics.rejected.labels(Reason.UNAUTHENTICATED)
        interceptors.append(security.TokenAuth(config.auth_token, f"/{SERVICE}/", refused.inc))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="grpc"),
        options=grpc_options(config.max_message_bytes, config.keepalive_seconds),
        interceptors=interceptors,
    )
    server.add_generic_rpc_handlers((servicer.rpc_handler(),))
    health.attach(server)
    address = f"{config.host}:{config.port}"
    credentials = security.server_credentials(config.tls_cert, config.tls_key, config.tls_ca)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError:  # grpc raises instead of returning 0 on some failures
        port = 0
    if port == 0:
        raise ConfigError(f"{describe('port')}: cannot bind {config.host}:{config.port}")
    if credentials is not None and config.health_port is None:
        log.warning(
            "TLS is on and --health-port is not set: health is served only over TLS, which Kubernetes' "
            "grpc probes cannot speak"
        )
    return server, port
