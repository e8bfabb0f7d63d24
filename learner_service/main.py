"""`relayrl learner` / `python -m learner_service`: wiring, stop criteria, signals, shutdown."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path

import grpc
import gymnasium as gym
import torch

from learner_service import checkpoints, security
from learner_service.config import LearnerConfig
from learner_service.coordinators import AsyncQueue, SyncRounds
from learner_service.metrics import LearnerMetrics
from learner_service.optim import linear_schedule, make_optimizer
from learner_service.progress import Progress, ProgressPrinter
from learner_service.server import SERVICE, LearnerServicer, receive_limit
from learner_service.sessions import Registry, WeightsBoard
from learner_service.trainer import Trainer
from relayrl import __version__, telemetry
from relayrl.config import ConfigError, config_errors_exit_2, describe, load, redacted
from relayrl.envs import single_spaces
from relayrl.health import Health, serve_health
from relayrl.keepalive import keepalive_options
from relayrl.loss import LossConfig
from relayrl.model import ActorCritic, layout
from relayrl.v1 import relayrl_pb2 as pb

log = logging.getLogger("relayrl.learner")


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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{describe('device')}: {name} requested but CUDA is not available")
    return device


def run_config_message(config: LearnerConfig) -> pb.RunConfig:
    return pb.RunConfig(
        env_id=config.env,
        algo=config.algo,
        transport=config.transport,
        n_steps=config.n_steps,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        value_coef=config.value_coef,
        entropy_coef=config.entropy_coef,
        max_grad_norm=config.max_grad_norm,
        hidden_sizes=list(config.hidden_sizes),
        seed=config.seed,
        normalize_advantage=config.normalize_advantage,
        activation=config.activation,
        normalize_observations=config.normalize_observations,
        normalize_rewards=config.normalize_rewards,
        use_sde=config.use_sde,
        sde_sample_freq=config.sde_sample_freq,
    )


class Learner:
    """A running learner: gRPC server, trainer thread, checkpoints. ``serve()`` blocks until done."""

    def __init__(self, config: LearnerConfig) -> None:
        self.config = config
        # With --health-port, probes get NOT_SERVING from the start, while the model is built or resumed.
        self.health_server, self.health_port = None, None
        if config.health_port is None:
            self.health = Health(None, (SERVICE,))
        else:
            self.health_server, self.health, self.health_port = serve_health(
                config.host, config.health_port, (SERVICE,)
            )
            if self.health_port == 0:
                self.health_server.stop(0)
                raise ConfigError(f"{describe('health_port')}: cannot bind {config.host}:{config.health_port}")
        try:
            self._build()
        except BaseException:
            if self.health_server is not None:
                self.health_server.stop(0)
            raise

    def _build(self) -> None:
        config = self.config
        self.stop = threading.Event()
        self.final_return: float | None = None
        self.stop_reason = "stopped"
        self.finished = False  # a stop criterion was met (vs. a signal or close): actors get Stop and exit
        self.trainer_failed = False  # the trainer thread raised: no final checkpoint, exit status 1
        self.final_checkpoint_failed = False  # exit status 1: the end of the run was not saved
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        try:
            gym.spec(config.env)
        except gym.error.Error as exc:
            raise ConfigError(f"{describe('env')}: {exc}") from None
        self.device = resolve_device(config.device)
        self.observation_space, self.action_space = single_spaces(config.env)
        self.model = ActorCritic(
            self.observation_space,
            self.action_space,
            config.hidden_sizes,
            config.activation,
            normalize_observations=config.normalize_observations,
            normalize_rewards=config.normalize_rewards,
            ortho_init=config.ortho_init,
            log_std_init=config.log_std_init,
            use_sde=config.use_sde,
        ).to(self.device)
        self.optimizer = make_optimizer(
            config.optimizer, self.model.parameters(), config.lr, config.rms_alpha, config.rms_eps
        )
        self.metrics = LearnerMetrics(config.algo, config.env)
        self.progress = Progress()
        version = self._resume() if config.resume else 0
        self.board = WeightsBoard()
        self.registry = Registry(self.board)
        self.coordinator = SyncRounds(config.round_timeout) if config.algo == "a2c" else AsyncQueue(config.queue_size)
        self._last_checkpoint = time.monotonic()
        self.trainer = Trainer(
            self.model,
            self.optimizer,
            self.coordinator,
            self.board,
            self.progress,
            self.metrics,
            LossConfig(
                config.gamma, config.gae_lambda, config.value_coef, config.entropy_coef, config.normalize_advantage
            ),
            config.max_grad_norm,
            config.max_policy_lag,
            version=version,
            on_update=self._maybe_checkpoint,
            lr_at=linear_schedule(config.lr, config.max_env_steps) if config.lr_schedule == "linear" else None,
            connected=self.registry.live_count,
        )
        self.progress.version = version
        servicer = LearnerServicer(
            run_config_message(config),
            self.observation_space,
            self.action_space,
            {n: tuple(p.shape) for n, p in self.model.named_parameters()},
            self.board,
            self.registry,
            self.coordinator,
            self.progress,
            self.metrics,
            self.stop,
            config.max_message_bytes,
        )
        self.servicer = servicer
        interceptors = []
        if config.auth_token is not None:
            refused = self.metrics.rejected.labels("unauthenticated")
            interceptors.append(security.TokenAuth(config.auth_token, f"/{SERVICE}/", refused.inc))
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="grpc"),
            options=grpc_options(config.max_message_bytes, config.keepalive_seconds),
            interceptors=interceptors,
        )
        self.server.add_generic_rpc_handlers((servicer.rpc_handler(),))
        self.health.attach(self.server)
        address = f"{config.host}:{config.port}"
        credentials = security.server_credentials(config.tls_cert, config.tls_key, config.tls_ca)
        try:
            if credentials is None:
                self.port = self.server.add_insecure_port(address)
            else:
                self.port = self.server.add_secure_port(address, credentials)
        except RuntimeError:  # grpc raises instead of returning 0 on some failures
            self.port = 0
        if self.port == 0:
            raise ConfigError(f"{describe('port')}: cannot bind {config.host}:{config.port}")
        if credentials is not None and config.health_port is None:
            log.warning(
                "TLS is on and --health-port is not set: health is served only over TLS, which Kubernetes' "
                "grpc probes cannot speak"
            )
        self.metrics_server = None

    # --- checkpoints ---------------------------------------------------------------------------------
    def _state(self) -> dict:
        p = self.progress
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "version": self.trainer.version,
            "env_steps": p.env_steps,
            "episodes": p.episodes,
            "updates": p.updates,
            "samples": p.samples,
            "env": self.config.env,
            "hidden_sizes": list(self.config.hidden_sizes),
            "activation": self.config.activation,
            "algo": self.config.algo,
            "optimizer_name": self.config.optimizer,
            "relayrl_version": __version__,
            "torch_version": str(torch.__version__),
        }

    def _resume(self) -> int:
        found = checkpoints.resume_from(self.config.checkpoint_dir)
        if found is None:
            log.warning("--resume: no usable checkpoint in %s; starting fresh", self.config.checkpoint_dir)
            return 0
        path, state = found
        ours = (self.config.env, list(self.config.hidden_sizes), self.config.activation)
        theirs = (state.get("env"), list(state.get("hidden_sizes", [])), state.get("activation"))
        if ours != theirs:
            raise ConfigError(
                f"{describe('resume')}: {path} holds env, hidden sizes, activation {theirs}, this run asks for {ours}"
            )
        # The optimizer's saved statistics only mean something to the same kind of optimizer (loading Adam's
        # into RMSprop raised KeyError: 'square_avg'). Its scalars (--lr, --rms-alpha, --rms-eps) are the
        # run's own, not the checkpoint's, so they may change on resume; so may --algo and --transport,
        # which change how contributions are made, not what the model or the optimizer state means.
        saved = checkpoints.saved_optimizer(state)
        if saved != self.config.optimizer:
            raise ConfigError(
                f"{describe('optimizer')}: {path} was written with --optimizer {saved}, this run asks for "
                f"{self.config.optimizer}; resume with --optimizer {saved} or use a new checkpoint directory"
            )
        # Options that change what the model holds: the normalisation statistics and gSDE's log-std matrix
        # (the model's own use_sde: gSDE applies to Box actions only).
        ours = layout(self.model.state_dict())
        for name, theirs in layout(state["model"]).items():
            if theirs != ours[name]:
                raise ConfigError(
                    f"{describe(name)}: {path} was written {'with' if theirs else 'without'} it, this run asks "
                    f"for {getattr(self.config, name)}; match it or use a new checkpoint directory"
                )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.progress.resume(state)
        log.info("resumed from %s at policy version %d, %d env steps", path, state["version"], state["env_steps"])
        return int(state["version"])

    def checkpoint(self) -> Path | None:
        """Write a checkpoint now (None without a checkpoint directory); a failed write raises."""
        if self.config.checkpoint_dir is None:
            return None
        started = time.perf_counter()
        with self.trainer.lock:
            state = self._state()
            path = checkpoints.save(self.config.checkpoint_dir, state, self.config.keep_checkpoints)
        self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)
        self._last_checkpoint = time.monotonic()
        return path

    def _checkpoint_failed(self, exc: Exception, then: str) -> None:
        self.metrics.checkpoint_failures.inc()
        log.error(
            "checkpoint to %s failed: %s; %s",
            self.config.checkpoint_dir,
            exc,
            then,
            exc_info=not isinstance(exc, OSError),  # a full or unwritable disk needs no traceback
        )

    def _maybe_checkpoint(self) -> None:
        """The periodic checkpoint (on the trainer thread, after an update). A failed write (disk full, the
        directory gone or unwritable) must not stop training: it is logged, counted in
        relayrl_checkpoint_failures_total and tried again an interval later; older checkpoints stay."""
        if time.monotonic() - self._last_checkpoint >= self.config.checkpoint_every:
            self._last_checkpoint = time.monotonic()  # a failure, too, waits an interval before the retry
            try:
                self.checkpoint()
            except Exception as exc:  # noqa: BLE001 - whatever the write raised, training goes on
                self._checkpoint_failed(exc, f"training goes on, retrying in {self.config.checkpoint_every:g}s")

    # --- running ------------------------------------------------------------------------------------
    def start(self) -> None:
        self.server.start()
        self.metrics_server = telemetry.serve(self.metrics.registry, self.config.host, self.config.metrics_port)
        self._trainer_thread = threading.Thread(target=self._train, name="trainer", daemon=True)
        self._trainer_thread.start()
        self.health.set(True)  # the model is built (and resumed) and the trainer runs
        c = self.config
        log.info(
            "learner %s on port %d (%s%s): %s/%s on %s, device %s, torch %s, seed %d",
            __version__,
            self.port,
            "mutual TLS" if c.tls_ca else "TLS" if c.tls_cert else "plaintext",
            ", bearer token required" if c.auth_token else "",
            c.algo,
            c.transport,
            c.env,
            self.device,
            torch.__version__,
            c.seed,
        )

    def _train(self) -> None:
        """The trainer thread. If it fails, the learner must not go on serving (A2C actors would wait for
        the next version forever): log the traceback, go NOT_SERVING and stop; shutdown() then ends every
        stream with UNAVAILABLE (actors back off and reconnect to a restarted learner) and main() exits 1."""
        try:
            self.trainer.run(self.stop)
        except BaseException:
            log.critical("the trainer thread failed; stopping the learner", exc_info=True)
            self.trainer_failed = True
            self.health.shutdown()  # NOT_SERVING at once
            self.stop.set()

    def _done(self) -> str | None:
        c, p = self.config, self.progress
        if p.solved(c.target_return):
            return "solved"
        if c.max_env_steps is not None and p.env_steps >= c.max_env_steps:
            return "max_env_steps"
        if c.max_seconds is not None and p.elapsed() >= c.max_seconds:
            return "max_seconds"
        return None

    def serve(self) -> str:
        """Print progress until a stop criterion or ``self.stop``; then shut down. Returns the reason."""
        printer = ProgressPrinter(self.progress)
        next_line = time.monotonic() + self.config.log_every
        while not self.stop.is_set():
            reason = self._done()
            if reason is not None:
                self.stop_reason = reason
                self.finished = True
                # the mean return the decision was made on (draining the queue at shutdown adds episodes)
                self.final_return = self.progress.mean_return()
                break
            self.stop.wait(0.02)
            if time.monotonic() >= next_line:
                print(printer.line(), flush=True)
                next_line += self.config.log_every
        print(printer.line(), flush=True)
        self.shutdown()
        return self.stop_reason

    def shutdown(self, grace: float | None = None) -> None:
        """Stop taking work, apply what was accepted, write the final checkpoint, then end the streams:
        with Stop when training is over (actors exit), with UNAVAILABLE otherwise (SIGTERM: actors back
        off and reconnect to the next learner, which resumes from this checkpoint)."""
        grace = self.config.shutdown_grace if grace is None else grace
        finished_at = time.time()
        self.health.shutdown()  # NOT_SERVING from now on
        self.stop.set()  # readers stop offering, new streams are refused, the trainer drains its queue
        self._trainer_thread.join(timeout=30)
        if self.trainer_failed:
            self.stop_reason, self.finished = "trainer_failed", False
            # No final checkpoint: the failure may have come half-way through an update, leaving the model
            # or the optimizer inconsistent. The last periodic checkpoint, written after a whole update, is
            # kept as the newest, and --resume continues from it.
            if self.config.checkpoint_dir is not None:
                log.error("no final checkpoint after the trainer's failure; the newest one on disk is kept")
        else:
            try:
                path = self.checkpoint()
            except Exception as exc:  # noqa: BLE001 - still end the streams and write the summary
                self.final_checkpoint_failed = True
                self._checkpoint_failed(exc, "the newest older checkpoint is kept")
                path = None
            if path is not None:
                log.info("final checkpoint %s (policy version %d)", path, self.trainer.version)
        if self.servicer.discarded:
            log.info("discarded %d contributions that arrived while stopping", self.servicer.discarded)
        self.board.stop(self.stop_reason, finished=self.finished)
        self.server.stop(grace).wait()
        if self.health_server is not None:
            self.health_server.stop(0)
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        if self.config.run_dir is not None:
            self.write_summary(finished_at)

    def summary(self) -> dict:
        p = self.progress
        wall = p.elapsed()
        with p.lock:
            own_steps, resumed_steps = p.own("env_steps"), p.baseline.get("env_steps", 0)
        mean = self.final_return if self.final_return is not None else p.mean_return()
        return {
            "env": self.config.env,
            "algo": self.config.algo,
            "transport": self.config.transport,
            "actors": self.registry.peak,
            "peak_actors_connected": self.registry.peak,
            "solved": self.stop_reason == "solved",
            "stop_reason": self.stop_reason,
            "env_steps": p.env_steps,
            "wall_seconds": round(wall, 3),
            "mean_return": mean,
            "episodes": p.episodes,
            "updates": p.updates,
            "samples": p.samples,
            "policy_version": self.trainer.version,
            "resumed_env_steps": resumed_steps,  # env_steps at --resume; rates count only this process's own
            "steps_per_second": round(own_steps / wall, 1) if wall > 0 else 0.0,
            **p.rates(),
            "config": redacted(self.config),
            "versions": {
                "relayrl": __version__,
                "torch": str(torch.__version__),
                "gymnasium": gym.__version__,
                "grpc": grpc.__version__,
                "python": sys.version.split()[0],
            },
            "curve": p.curve,
        }

    def write_summary(self, finished_at: float) -> Path:
        run_dir = Path(self.config.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        data = self.summary()
        data["finished_at"] = finished_at
        path = run_dir / "summary.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, path)
        return path


@config_errors_exit_2("relayrl learner")
def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s learner %(levelname)s %(message)s")
    config = load(LearnerConfig, argv, prog="relayrl learner",
                  description="The RelayRL learner: owns the model, runs A2C/A3C updates, serves actors.")
    learner = Learner(config)  # a ConfigError here too: what only the model or the checkpoint can tell
    learner.start()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        learner.stop_reason = "signal"
        learner.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    reason = learner.serve()
    log.info("stopped: %s", reason)
    if learner.trainer_failed or learner.final_checkpoint_failed:
        why = "the trainer failed" if learner.trainer_failed else "the final checkpoint was not written"
        log.error("exiting with status 1: %s", why)
        return 1
    return 0
