"""`relayrl learner` / `python -m learner_service`: build the learner, handle signals, serve, exit status."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence

from learner_service import group
from learner_service.config import LearnerConfig
from learner_service.learner import Learner
from relayrl.config import config_errors_exit_2, service_config

log = logging.getLogger("relayrl.learner")


@config_errors_exit_2("relayrl learner")
def main(argv: Sequence[str] | None = None) -> int:
    config = service_config(
        LearnerConfig, argv, "learner", "The RelayRL learner: owns the model, runs A2C/A3C updates, serves actors."
    )
    if config.ranks() > 1 and group.from_environment() is None:
        launch_ranks(config, sys.argv[1:] if argv is None else list(argv))  # does not return
    learner = Learner(config)  # a ConfigError here too: what only the model or the checkpoint can tell
    learner.start()

    signalled: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        signalled.append(signum)
        learner.request_stop("signal")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    reason = learner.serve()
    log.info("stopped: %s", reason)
    if learner.trainer_failed or learner.final_checkpoint_failed:
        why = "the trainer failed" if learner.trainer_failed else "the final checkpoint was not written"
        log.error("exiting with status 1: %s", why)
        return 1
    if signalled and not learner.finished and has_stop_target(config):
        # A run with a stop target that has not met it is not over: exit 0 would make a Kubernetes Job (a
        # drain, an eviction) Complete and its run look finished. 128 + the signal, as a shell reports it, so the
        # Job starts a pod that resumes from the final checkpoint just written.
        log.warning("stopped by signal %d before the stop target; exiting with status %d", signalled[0],
                    128 + signalled[0])
        return 128 + signalled[0]
    return 0


def has_stop_target(config: LearnerConfig) -> bool:
    return any(v is not None for v in (config.target_return, config.max_env_steps, config.max_seconds))


def launch_ranks(config: LearnerConfig, argv: list[str]) -> None:
    """Become torchrun (torch.distributed.run) starting --learners ranks of this same command on this machine,
    meeting each other (--standalone) or, with --learner-nodes, the other machines' ranks at --rendezvous; each
    rank then sees RANK and WORLD_SIZE and runs one learner. A rank that fails takes the group down and torchrun
    starts it again, up to --max-restarts times (each from the newest checkpoint). Signals reach torchrun, which
    passes them on to the ranks."""
    if config.learner_nodes == 1:
        meet = ["--standalone"]
    else:  # several machines: torchrun's c10d rendezvous, one id for the run on every machine
        meet = ["--nnodes", str(config.learner_nodes), "--rdzv-backend", "c10d", "--rdzv-endpoint",
                config.rendezvous, "--rdzv-id", config.run_name or "relayrl"]
    command = [sys.executable, "-m", "torch.distributed.run", *meet, "--nproc-per-node", str(config.learners),
               "--max-restarts", str(config.max_restarts), "-m", "learner_service", *argv]
    log.info("starting %d of %d learner ranks: %s", config.learners, config.ranks(), " ".join(command[1:]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
