"""When and what the learner checkpoints: its state (model, optimizer, version, counters, what the run
was), written on demand (the final checkpoint) and every --checkpoint-every seconds after an update. The
files themselves (atomic writes, the newest K kept): checkpoints.py."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from learner_service import checkpoints
from learner_service.config import LearnerConfig
from learner_service.metrics import LearnerMetrics
from learner_service.progress import Progress
from learner_service.trainer import Trainer
from relayrl import __version__
from relayrl.architecture import architecture

log = logging.getLogger("relayrl.learner")


class Checkpointer:
    def __init__(self, config: LearnerConfig, trainer: Trainer, progress: Progress, metrics: LearnerMetrics,
                 writes: bool = True) -> None:
        self.config, self.trainer, self.progress, self.metrics = config, trainer, progress, metrics
        self.writes = writes  # False on a learner rank other than 0: it holds rank 0's weights, rank 0 saves them
        self._last = time.monotonic()
        # Set by the learner before its final checkpoint when a stop criterion was met (its name): the
        # checkpoint then marks the run finished, with the targets it met, and --resume refuses it unless a
        # target is raised or --resume-finished is given (learner_service/resume.py).
        self.finished: str | None = None

    def state(self) -> dict:
        """What a checkpoint holds. Call with the trainer's lock held (no update half-way)."""
        p, c = self.progress, self.config
        return {
            "model": self.trainer.model.state_dict(),
            "optimizer": self.trainer.optimizer.state_dict(),
            "version": self.trainer.version,
            "env_steps": p.env_steps,
            "episodes": p.episodes,
            "updates": p.updates,
            "samples": p.samples,
            "env": c.env,
            "env_kwargs": c.env_kwargs,
            **{name: list(v) if isinstance(v, tuple) else v for name, v in architecture(c).items()},
            "algo": c.algo,
            "optimizer_name": c.optimizer,
            "relayrl_version": __version__,
            "torch_version": str(torch.__version__),
            "finished": None if self.finished is None else {
                "reason": self.finished,
                "target_return": c.target_return,
                "max_env_steps": c.max_env_steps,
                "max_seconds": c.max_seconds,
            },
        }

    def write(self) -> Path | None:
        """Write a checkpoint now (None without a checkpoint directory); a failed write raises."""
        if self.config.checkpoint_dir is None or not self.writes:
            return None
        started = time.perf_counter()
        with self.trainer.lock:
            state = self.state()
            path = checkpoints.save(self.config.checkpoint_dir, state, self.config.keep_checkpoints)
        self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)
        self.metrics.last_checkpoint.set_to_current_time()
        self._last = time.monotonic()
        return path

    def failed(self, exc: Exception, then: str) -> None:
        """Count and log a failed write; ``then`` says what happens next."""
        self.metrics.checkpoint_failures.inc()
        log.error(
            "checkpoint to %s failed: %s; %s",
            self.config.checkpoint_dir,
            exc,
            then,
            exc_info=not isinstance(exc, OSError),  # a full or unwritable disk needs no traceback
        )

    def maybe_write(self) -> None:
        """The periodic checkpoint (on the trainer thread, after an update). A failed write (disk full, the
        directory gone or unwritable) must not stop training: it is logged, counted in
        relayrl_checkpoint_failures_total and tried again an interval later; older checkpoints stay."""
        if time.monotonic() - self._last >= self.config.checkpoint_every:
            self._last = time.monotonic()  # a failure, too, waits an interval before the retry
            try:
                self.write()
            except Exception as exc:  # noqa: BLE001 - whatever the write raised, training goes on
                self.failed(exc, f"training goes on, retrying in {self.config.checkpoint_every:g}s")
