"""A running learner: the parts built from its config, the trainer thread, the stop criteria and the
orderly shutdown. ``main.py`` builds one, installs the signal handlers and calls ``serve()``."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from pathlib import Path

import torch

from learner_service import coordinators, group, training_setup
from learner_service.checkpointer import Checkpointer
from learner_service.config import LearnerConfig
from learner_service.evaluator import EvalResult, Evaluator
from learner_service.grpc_server import bind_server
from learner_service.metrics import LearnerMetrics
from learner_service.progress import Progress, ProgressPrinter
from learner_service.resume import resume
from learner_service.run_config import run_config_message
from learner_service.server import SERVICE, LearnerServicer
from learner_service.sessions import Registry, WeightsBoard
from learner_service.summary import run_summary, write_summary
from learner_service.tensorboard_log import TensorBoardLog
from learner_service.trainer import GroupRole, Trainer
from relayrl import __version__, telemetry
from relayrl.config import ConfigError, describe
from relayrl.envs import env_kwargs
from relayrl.health import Health, serve_health
from relayrl.loss import LossConfig

log = logging.getLogger("relayrl.learner")


def stop_criterion(config: LearnerConfig, progress: Progress, evaluator: Evaluator | None = None) -> str | None:
    """The stop criterion the run has met (--target-return, on the training return or, with --target-metric
    eval, on the latest evaluation; --max-env-steps, --max-seconds), if any."""
    if config.target_metric == "eval":
        if evaluator is not None and evaluator.solved(config.target_return):
            return "solved"
    elif progress.solved(config.target_return):
        return "solved"
    if config.max_env_steps is not None and progress.env_steps >= config.max_env_steps:
        return "max_env_steps"
    if config.max_seconds is not None and progress.elapsed() >= config.max_seconds:
        return "max_seconds"
    return None


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
        # Among data-parallel learners (torchrun set RANK and WORLD_SIZE): this rank's ports and share of the work
        self.rank = group.from_environment()
        if self.rank is not None:
            self.config = group_config(self.config, self.rank)
        config = self.config
        self.stop = threading.Event()
        self.final_return: float | None = None
        self.stop_reason = "stopped"
        self.finished = False  # a stop criterion was met (vs. a signal or close): actors get Stop and exit
        self.trainer_failed = False  # the trainer thread raised: no final checkpoint, exit status 1
        self.final_checkpoint_failed = False  # exit status 1: the end of the run was not saved
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.observation_space, self.action_space = training_setup.env_spaces(config)
        self.device = training_setup.resolve_device(config.device)
        if self.rank is not None and self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", self.rank.local_rank)  # one GPU per rank on a machine
        self.model = training_setup.build_model(config, self.observation_space, self.action_space, self.device)
        self.optimizer = training_setup.build_optimizer(config, self.model)
        self.metrics = LearnerMetrics(config.algo, config.env)
        if self.rank is not None:
            self.metrics.set_rank(self.rank.rank, self.rank.world_size)
        self.progress = Progress()
        # torchrun restarting the group after a rank failed: every rank continues from the newest checkpoint
        restarted = self.rank is not None and self.rank.attempt > 0
        version = resume(config, self.model, self.optimizer, self.progress) if config.resume or restarted else 0
        if self.rank is not None:
            group.join(self.rank, self.device)
            # Every rank resumes from the same checkpoint (one directory all ranks read; rank 0 writes it): a rank
            # that found another, or none, would step a different optimizer state from a different version.
            if not group.same_everywhere([version, self.progress.env_steps], self.device):
                raise ConfigError(f"{describe('checkpoint_dir')}: learner rank {self.rank.rank} resumed at policy "
                                  f"version {version}, another rank elsewhere; every rank must read rank 0's "
                                  "checkpoint directory (shared storage)")
            group.broadcast_weights(self.model)  # rank 0's, bit for bit, whatever each rank initialised
        self.board = WeightsBoard()
        self.registry = Registry(self.board, *((self.rank.rank, self.rank.world_size) if self.rank else (0, 1)))
        self.coordinator = coordinators.for_algorithm(config.algo, config.round_timeout, config.queue_size)
        self.trainer = Trainer(
            self.model,
            self.optimizer,
            self.coordinator,
            self.board,
            self.progress,
            self.metrics,
            LossConfig.of(config),
            config.max_grad_norm,
            config.max_policy_lag,
            version=version,
            on_update=lambda: self.checkpointer.maybe_write(),  # the checkpointer needs the trainer
            lr_at=training_setup.lr_schedule(config),
            connected=self.registry.live_count,
            group=None if self.rank is None else GroupRole(
                reason=lambda: self.stop_reason, stopped_by_group=self._stopped_by_group,
                check_every=config.weights_check_every),
        )
        writes = self.rank is None or self.rank.writes
        self.checkpointer = Checkpointer(config, self.trainer, self.progress, self.metrics, writes=writes)
        self.progress.version = version
        self.servicer = LearnerServicer(
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
        self.server, self.port = bind_server(config, self.servicer, self.health, self.metrics)
        self.metrics_server = None
        self.evaluator = self._evaluator() if config.eval_every is not None else None  # checks video support
        self.tensorboard = None
        if config.tensorboard and config.run_dir is not None:
            # after --resume the curves continue from the checkpoint's env steps (see tensorboard_log.py)
            purge = self.progress.env_steps if config.resume else None
            self.tensorboard = TensorBoardLog(config.run_dir, self.progress, lambda: self.trainer.last_update, purge)

    def _evaluator(self) -> Evaluator:
        config = self.config
        if config.eval_video_every:
            from relayrl.video import video_support

            if (missing := video_support(config.env)) is not None:
                raise ConfigError(f"{describe('eval_video_every')}: {missing}")
        return Evaluator(
            self.trainer,
            self.progress,
            lambda: training_setup.build_model(config, self.observation_space, self.action_space, torch.device("cpu")),
            lambda: {k: v for k, v in self.checkpointer.state().items() if k not in ("model", "optimizer")},
            config.env,
            env_kwargs(config.env_kwargs),
            config.eval_every,
            config.eval_episodes,
            config.seed,
            config.checkpoint_dir,
            config.eval_video_every,
            f"{config.run_dir}/videos" if config.run_dir is not None else None,
            on_result=self._evaluated,
        )

    def _evaluated(self, result: EvalResult) -> None:
        """An evaluation's result, to Prometheus, TensorBoard and the progress line (the evaluation thread)."""
        self.metrics.evaluations.inc()
        self.metrics.eval_mean_return.set(result.mean_return)
        if self.evaluator is not None and self.evaluator.best is not None:
            self.metrics.eval_best_return.set(self.evaluator.best)
        with self.progress.lock:
            self.progress.eval_return = result.mean_return
        if self.tensorboard is not None:
            self.tensorboard.write_eval(result.env_steps, result.returns, result.lengths)

    def checkpoint(self) -> Path | None:
        """Write a checkpoint now (None without a checkpoint directory); a failed write raises."""
        return self.checkpointer.write()

    # --- running ------------------------------------------------------------------------------------
    def start(self) -> None:
        self.server.start()
        self.metrics_server = telemetry.serve(self.metrics.registry, self.config.host, self.config.metrics_port)
        self._trainer_thread = threading.Thread(target=self._train, name="trainer", daemon=True)
        self._trainer_thread.start()
        if self.evaluator is not None:
            self.evaluator.start(self.stop)
        self.health.set(True)  # the model is built (and resumed) and the trainer runs
        c = self.config
        log.info(
            "learner %s%s on port %d (%s%s): %s/%s on %s, device %s, torch %s, seed %d",
            __version__,
            "" if self.rank is None else f" rank {self.rank.rank} of {self.rank.world_size} (pid {os.getpid()})",
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

    def _stopped_by_group(self, reason: str) -> None:
        """Another learner rank stopped the group for ``reason`` (the trainer thread): this rank ends with it."""
        log.info("rank %d: the group stopped (%s)", self.rank.rank if self.rank else 0, reason)
        if reason != "stopped":
            self.stop_reason, self.finished = reason, True
            self.final_return = self.progress.mean_return()
        else:
            self.stop_reason = "group"
        self.stop.set()

    def request_stop(self, reason: str) -> None:
        """Stop serving for ``reason`` (a signal, say): ``serve()`` then shuts down and returns. A run that has
        just met its stop criterion keeps that as its reason (a signal arriving then does not unfinish it)."""
        if not self.finished:
            self.stop_reason = reason
        self.stop.set()

    def serve(self) -> str:
        """Print progress until a stop criterion or ``self.stop``; then shut down. Returns the reason."""
        printer = ProgressPrinter(self.progress)
        next_line = time.monotonic() + self.config.log_every
        while not self.stop.is_set():
            reason = stop_criterion(self.config, self.progress, self.evaluator)
            if reason is not None:
                self.stop_reason = reason
                self.finished = True
                # the mean return the decision was made on (draining the queue at shutdown adds episodes)
                last_eval = self.evaluator.last if self.evaluator is not None else None
                if self.config.target_metric == "eval" and last_eval is not None:
                    self.final_return = last_eval.mean_return
                else:
                    self.final_return = self.progress.mean_return()
                break
            self.stop.wait(0.02)
            if time.monotonic() >= next_line:
                print(printer.line(), flush=True)
                if self.tensorboard is not None:
                    self.tensorboard.write()
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
        if self.evaluator is not None:
            self.evaluator.join(timeout=60)  # an evaluation under way finishes (and writes best.pt)
        if self.trainer_failed:
            self.stop_reason, self.finished = "trainer_failed", False
            # No final checkpoint: the failure may have come half-way through an update, leaving the model
            # or the optimizer inconsistent. The last periodic checkpoint, written after a whole update, is
            # kept as the newest, and --resume continues from it.
            if self.config.checkpoint_dir is not None:
                log.error("no final checkpoint after the trainer's failure; the newest one on disk is kept")
        else:
            if self.finished:
                self.checkpointer.finished = self.stop_reason
            try:
                path = self.checkpoint()
            except Exception as exc:  # noqa: BLE001 - still end the streams and write the summary
                self.final_checkpoint_failed = True
                self.checkpointer.failed(exc, "the newest older checkpoint is kept")
                path = None
            if path is not None:
                log.info("final checkpoint %s (policy version %d)", path, self.trainer.version)
        if self.servicer.discarded:
            log.info("discarded %d contributions that arrived while stopping", self.servicer.discarded)
        self.board.stop(self.stop_reason, finished=self.finished)
        self.server.stop(grace).wait()
        # What was accepted and never applied: the open A2C round (A3C's queue was drained). Unacknowledged,
        # so its actors deliver it again to the next learner, which resumes at this round's version.
        abandoned = self.coordinator.depth()
        if abandoned:
            self.metrics.contributions.labels("abandoned_round").inc(abandoned)
            log.info("left %d contributions of an unfinished round unapplied", abandoned)
        if self.health_server is not None:
            self.health_server.stop(0)
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        if self.tensorboard is not None:
            self.tensorboard.write()
            self.tensorboard.close()
        if self.config.run_dir is not None:
            write_summary(self.config.run_dir, {**self.summary(), "finished_at": finished_at})
        if self.rank is not None:
            group.leave()

    def summary(self) -> dict:
        summary = run_summary(
            self.config, self.progress, self.trainer.version, self.registry.peak, self.stop_reason, self.final_return
        )
        if self.evaluator is not None:
            summary["eval"] = self.evaluator.summary()
        barrier = self.coordinator.barrier()
        if barrier is not None:
            summary["a2c_barrier"] = barrier
        if self.rank is not None:
            summary["learners"] = {"ranks": self.rank.world_size, "weights_checks": self.trainer.weights_checks}
        return summary


def group_config(config: LearnerConfig, rank: group.Rank) -> LearnerConfig:
    """A rank's own configuration: its ports offset by its local rank (several ranks share a machine), and on
    every rank but 0 no run folder, TensorBoard or evaluation (rank 0 writes them; checkpoints: Checkpointer)."""
    def offset(port: int | None) -> int | None:
        return port if port is None or port <= 0 else port + rank.local_rank

    changes: dict = dict(port=offset(config.port), metrics_port=offset(config.metrics_port),
                         health_port=offset(config.health_port))
    if not rank.writes:
        changes.update(run_dir=None, tensorboard=False, eval_every=None)
    return dataclasses.replace(config, **changes)
