"""--resume: continue from the newest checkpoint that loads, when this run's options can hold what it saved."""

from __future__ import annotations

import logging
from pathlib import Path

from learner_service import checkpoints
from learner_service.config import LearnerConfig
from learner_service.optim import Optimizer
from learner_service.progress import Progress
from relayrl.architecture import architecture
from relayrl.config import ConfigError, describe
from relayrl.envs import env_kwargs
from relayrl.model import ActorCritic, layout

log = logging.getLogger("relayrl.learner")


def resume(config: LearnerConfig, model: ActorCritic, optimizer: Optimizer, progress: Progress) -> int:
    """Load the newest usable checkpoint of --checkpoint-dir into the model, the optimizer and the counters;
    returns its policy version (0, starting fresh, when there is none). A ConfigError when it does not fit."""
    found = checkpoints.resume_from(config.checkpoint_dir)
    if found is None:
        log.warning("--resume: no usable checkpoint in %s; starting fresh", config.checkpoint_dir)
        return 0
    path, state = found
    check_not_finished(config, path, state)
    check_fits(config, model, path, state)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    progress.resume(state)
    log.info("resumed from %s at policy version %d, %d env steps", path, state["version"], state["env_steps"])
    return int(state["version"])


# A finished run's stop reason -> the option whose raise continues it on purpose (max_seconds counts this
# process's time, so it never continues a run by itself: --resume-finished does).
RAISED_TARGET = {"max_env_steps": "max_env_steps", "solved": "target_return"}


def check_not_finished(config: LearnerConfig, path: Path, state: dict) -> None:
    """A ConfigError when the checkpoint at ``path`` ends a finished run and nothing says to go on: a
    restarted or re-applied finished run (the same configuration again) must not train by accident. Going
    on is explicit: the target it met raised (relayrl train --resume --max-env-steps MORE), or
    --resume-finished."""
    finished = state.get("finished")
    if not finished or config.resume_finished:
        return
    option = RAISED_TARGET.get(finished["reason"])
    if option is not None:
        met, asked = finished.get(option), getattr(config, option)
        if met is not None and asked is not None and asked > met:
            log.info("resuming the finished run %s: %s raised from %s to %s", path.parent, describe(option), met, asked)
            return
    raise ConfigError(
        f"{describe('resume')}: {path} ends a run that finished ({finished['reason']}, at {state['env_steps']} env "
        f"steps); start a new run with another {describe('run_name')}, raise the target it met, or pass "
        f"{describe('resume_finished')} to train it further"
    )


def check_fits(config: LearnerConfig, model: ActorCritic, path: Path, state: dict) -> None:
    """A ConfigError naming the option when the checkpoint at ``path`` was written for another env or
    network, with another optimizer, or with another model layout than ``model``'s."""
    ours = {"env": config.env, **architecture(config)}
    theirs = {"env": state.get("env"), **architecture(state)}
    if ours != theirs:
        differ = {name: theirs[name] for name in ours if ours[name] != theirs[name]}
        asked = {name: ours[name] for name in differ}
        raise ConfigError(f"{describe('resume')}: {path} holds {differ}, this run asks for {asked}")
    # The env's keyword arguments may change its spaces (checkpoints from before them hold none).
    if env_kwargs(state.get("env_kwargs") or "") != env_kwargs(config.env_kwargs):
        raise ConfigError(
            f"{describe('env_kwargs')}: {path} was written with env kwargs {state.get('env_kwargs') or '{}'}, this "
            f"run asks for {config.env_kwargs or '{}'}; match them or use another --run-name"
        )
    # The optimizer's saved statistics only mean something to the same kind of optimizer (loading Adam's
    # into RMSprop raised KeyError: 'square_avg'). Its scalars (--lr, --rms-alpha, --rms-eps) are the
    # run's own, not the checkpoint's, so they may change on resume; so may --algo and --transport,
    # which change how contributions are made, not what the model or the optimizer state means.
    saved = checkpoints.saved_optimizer(state)
    if saved != config.optimizer:
        raise ConfigError(
            f"{describe('optimizer')}: {path} was written with --optimizer {saved}, this run asks for "
            f"{config.optimizer}; resume with --optimizer {saved} or use a new checkpoint directory"
        )
    # Options that change what the model holds: the normalisation statistics and gSDE's log-std matrix
    # (the model's own use_sde: gSDE applies to Box actions only).
    ours = layout(model.state_dict())
    for name, theirs in layout(state["model"]).items():
        if theirs != ours[name]:
            raise ConfigError(
                f"{describe(name)}: {path} was written {'with' if theirs else 'without'} it, this run asks "
                f"for {getattr(config, name)}; match it or use a new checkpoint directory"
            )
