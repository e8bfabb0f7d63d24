"""The actor's configuration: every flag of `relayrl actor` and its RELAYRL_* variable.

What to train (env, n_steps, algorithm, loss) is the learner's run configuration, sent on Welcome;
an actor only needs to know where the learner is and how much to run.
"""

from __future__ import annotations

from dataclasses import dataclass

from relayrl.config import check_credentials, option, require


@dataclass
class ActorConfig:
    learner: str = option("localhost:50051", "Learner address, HOST:PORT.")
    num_envs: int = option(64, "Environments stepped together as one vector env.")
    env: str | None = option(None, "Refuse to run unless the learner trains this env id (default: any).")
    actor_id: str | None = option(None, "Stable actor name (default: HOSTNAME-PID).")
    threads: int = option(1, "Torch intra-op threads for inference and local gradients.")
    seed: int | None = option(None, "Env seed (default: the learner's seed plus 1000 x this actor's index).")
    when_finished: str = option(
        "exit",
        "When the learner says the run is over: exit (status 0; for Compose, whose restart policy leaves it "
        "stopped) or wait (stop acting and stay idle, healthy, until SIGTERM; for a Kubernetes Deployment, "
        "which would restart an exited actor into a crash loop).",
        choices=("exit", "wait"),
    )
    metrics_host: str = option("0.0.0.0", "Address the /metrics endpoint binds.")
    metrics_port: int = option(9401, "Prometheus /metrics port; 0 picks a free one, negative disables.")
    health_port: int = option(50052, "gRPC health-check port (grpc.health.v1); 0 picks a free one, negative disables.")
    connect_timeout: float = option(10.0, "Seconds to wait for one connection attempt.")
    backoff_initial: float = option(0.05, "First reconnect delay in seconds (doubles up to --backoff-max, jittered).")
    backoff_max: float = option(10.0, "Longest reconnect delay in seconds.")
    max_message_bytes: int = option(64 * 1024 * 1024, "Largest gRPC message sent or accepted.")
    keepalive_seconds: float = option(
        10.0,
        "Seconds between HTTP/2 keepalive pings to the learner; no answer within as long again closes the "
        "connection and reconnects, so a silent network cut is noticed within about twice this.",
    )
    tls: bool = option(
        False,
        "Dial the learner with TLS, verifying its certificate against the system trust store (one from a public "
        "CA, e.g. ACME) unless --tls-ca is given. --tls-ca or --tls-cert turn TLS on too.",
    )
    tls_ca: str | None = option(
        None, "PEM CA bundle to verify the learner's certificate with; turns TLS on (as do --tls-cert/--tls-key)."
    )
    tls_cert: str | None = option(None, "PEM client certificate chain, for a learner that requires mutual TLS.")
    tls_key: str | None = option(None, "PEM private key of --tls-cert.")
    tls_server_name: str | None = option(
        None, "Name to expect in the learner's certificate (default: the host part of --learner)."
    )
    auth_token: str | None = option(
        None,
        "Shared secret sent as 'authorization: Bearer TOKEN' on the stream (the learner's --auth-token). "
        "Prefer the variable over the flag (flags show in ps).",
        secret=True,
    )
    auth_token_file: str | None = option(
        None,
        "Read the token from this file instead (a mounted Kubernetes Secret: never in the environment or ps); "
        "surrounding whitespace is dropped.",
    )

    def validate(self) -> None:
        host, _, port = self.learner.rpartition(":")
        require(
            bool(host) and port.isdigit() and 0 < int(port) < 65536, "learner", f"{self.learner!r} is not HOST:PORT"
        )
        require(self.num_envs >= 1, "num_envs", "must be at least 1")
        require(self.threads >= 1, "threads", "must be at least 1")
        require(self.metrics_port <= 65535, "metrics_port", f"{self.metrics_port} is not a port")
        require(self.health_port <= 65535, "health_port", f"{self.health_port} is not a port")
        require(self.connect_timeout > 0, "connect_timeout", "must be positive")
        require(
            0 < self.backoff_initial <= self.backoff_max,
            "backoff_initial",
            "must be positive and at most --backoff-max",
        )
        require(self.max_message_bytes >= 1024, "max_message_bytes", "must be at least 1024")
        require(self.keepalive_seconds >= 1, "keepalive_seconds", "must be at least 1")
        check_credentials(self)
