"""Who may talk to the learner: TLS on the gRPC port (mutual when given a CA) and a shared bearer token.

Mutual TLS is enforced by the TLS handshake itself: a client without a certificate signed by --tls-ca
never reaches RelayRL code (it sees UNAVAILABLE), so it cannot be counted. The bearer token is checked
by a server interceptor before a stream starts: missing or wrong, the call ends with UNAUTHENTICATED
and relayrl_rejected_total{reason="unauthenticated"} counts it. The health service is never protected
(probes carry no credentials and the service reveals nothing).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from pathlib import Path

import grpc

log = logging.getLogger(__name__)

BEARER = "bearer "


def server_credentials(cert: str | None, key: str | None, ca: str | None) -> grpc.ServerCredentials | None:
    """TLS credentials for the gRPC port (None: plaintext); with ``ca``, client certificates are required."""
    if cert is None or key is None:
        return None
    return grpc.ssl_server_credentials(
        [(Path(key).read_bytes(), Path(cert).read_bytes())],
        root_certificates=Path(ca).read_bytes() if ca else None,
        require_client_auth=ca is not None,
    )


def bearer(metadata: tuple | None) -> bytes:
    """The token of an 'authorization: Bearer TOKEN' entry, or b'' when there is none."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value[: len(BEARER)].lower() == BEARER:
            return value[len(BEARER) :].strip().encode()
    return b""


class TokenAuth(grpc.ServerInterceptor):
    """Lets a call to a method under ``prefix`` through only with the right bearer token.

    The comparison is hmac.compare_digest (constant time in the token's content). ``on_refused`` counts
    a refusal; refusals are logged at 1, 2, 4, 8... so a flood of them cannot flood the log.
    """

    def __init__(self, token: str, prefix: str, on_refused: Callable[[], None]) -> None:
        self._expected = token.encode()
        self._prefix = prefix
        self._on_refused = on_refused
        self._refused = 0
        self._deny = grpc.stream_stream_rpc_method_handler(self._abort)

    @staticmethod
    def _abort(_request_iterator, context: grpc.ServicerContext):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token (--auth-token)")

    def intercept_service(self, continuation, handler_call_details):
        if not handler_call_details.method.startswith(self._prefix):
            return continuation(handler_call_details)
        if hmac.compare_digest(bearer(handler_call_details.invocation_metadata), self._expected):
            return continuation(handler_call_details)
        self._on_refused()
        self._refused += 1
        if self._refused & (self._refused - 1) == 0:
            log.warning("refused a call without the right bearer token (%d so far)", self._refused)
        return self._deny
