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


class CertificateFiles:
    """The learner's certificate, key and (mutual TLS) client CA as files that may be replaced while it runs:
    cert-manager renews the Secret and the kubelet swaps the mounted files. gRPC asks ``fetch`` at every new
    connection's handshake; it re-reads the files when one changed (size or modification time) and hands
    gRPC the new configuration, so new connections get the renewed certificate and open ones go on. A
    renewal caught half-written (or a broken one) keeps the last good configuration and is logged."""

    def __init__(self, cert: str, key: str, ca: str | None) -> None:
        self.paths = [Path(p) for p in (cert, key, ca) if p is not None]
        self.cert, self.key, self.ca = Path(cert), Path(key), Path(ca) if ca else None
        self._seen = self._stamp()
        self.initial = self._configuration()
        self.reloads = 0

    def _stamp(self) -> list[tuple[int, int]]:
        stats = [p.stat() for p in self.paths]
        return [(st.st_mtime_ns, st.st_size) for st in stats]

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=self.ca.read_bytes() if self.ca else None,
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """None: keep serving the current certificate; else the renewed one."""
        try:
            stamp = self._stamp()
            if stamp == self._seen:
                return None
            configuration = self._configuration()
        except Exception as exc:  # noqa: BLE001 - gRPC would drop the handshake; keep the last good one
            log.warning("TLS files changed but cannot be read (%s); serving the previous certificate", exc)
            return None
        self._seen = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded from %s (reload %d)", self.cert, self.reloads)
        return configuration


def server_credentials(cert: str | None, key: str | None, ca: str | None) -> grpc.ServerCredentials | None:
    """TLS credentials for the gRPC port (None: plaintext) that follow renewals of the files (CertificateFiles);
    with ``ca``, client certificates are required."""
    if cert is None or key is None:
        return None
    files = CertificateFiles(cert, key, ca)
    return grpc.dynamic_ssl_server_credentials(files.initial, files.fetch, require_client_authentication=ca is not None)


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
