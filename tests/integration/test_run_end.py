"""A run that meets its stop target is over: its final checkpoint says so, a learner restarted on it with
--resume refuses to train it further (unless --resume-finished), and an actor told to wait for the end
stays idle instead of exiting into a restart loop. Real learner, real actor, real gRPC, real files."""

from __future__ import annotations

import pytest

from learner_service import checkpoints
from learner_service.config import LearnerConfig
from learner_service.learner import Learner
from relayrl.config import ConfigError, load
from tests.conftest import flags, metric, wait_until


def finished_run(start_learner, start_actor, tmp_path, when_finished: str):
    learner = start_learner(algo="a2c", n_steps=4, checkpoint_dir=str(tmp_path), run_name="first", resume=True,
                            max_env_steps=400)
    actor = start_actor(learner.address, when_finished=when_finished)
    wait_until(lambda: not learner.thread.is_alive(), 60, "the learner to meet its stop target and stop")
    assert learner.stop_reason == "max_env_steps"
    return learner, actor


def test_the_final_checkpoint_marks_the_run_finished(start_learner, start_actor, tmp_path):
    finished_run(start_learner, start_actor, tmp_path, "exit")
    path, state = checkpoints.resume_from(str(tmp_path / "first"))
    assert state["finished"]["reason"] == "max_env_steps" and state["finished"]["max_env_steps"] == 400, path


def test_a_finished_run_is_not_resumed_by_accident(start_learner, start_actor, tmp_path):
    finished_run(start_learner, start_actor, tmp_path, "exit")

    def resumed(**targets) -> list[str]:
        return flags(checkpoint_dir=tmp_path, run_name="first", resume=True, port=0, metrics_port=-1,
                     hidden_sizes="16,16", **targets)

    # The run started again as it was (a Job re-applied), or with another kind of target: refused.
    for argv in (resumed(max_env_steps=400), resumed(target_return=10**6)):
        with pytest.raises(ConfigError, match=r"finished \(max_env_steps.*--run-name.*--resume-finished"):
            Learner(load(LearnerConfig, argv, environ={}))
    # Going on on purpose: the target it met raised (relayrl train --resume --max-env-steps MORE), or
    # --resume-finished; both train on from the finished run's checkpoint.
    for argv in (resumed(max_env_steps=800), resumed(max_env_steps=400, resume_finished=True)):
        learner = Learner(load(LearnerConfig, argv, environ={}))
        try:
            assert learner.progress.env_steps >= 400
        finally:
            learner.server.stop(0)


def test_an_actor_told_to_wait_stays_idle_until_sigterm(start_learner, start_actor, tmp_path):
    _, actor = finished_run(start_learner, start_actor, tmp_path, "wait")
    wait_until(lambda: actor.run_over == "max_env_steps", 10, "the actor to hear that the run is over")
    actor.thread.join(timeout=2)  # an actor that exits does so at once (the next test)
    # The learner has stopped for good; the actor neither exited nor dialled again.
    assert actor.thread.is_alive() and actor.exit_code is None
    assert metric(actor.metrics.registry, "relayrl_learner_connected") == 0
    assert metric(actor.metrics.registry, "relayrl_reconnects_total") == 0
    actor.stop.set()  # SIGTERM
    actor.thread.join(timeout=10)
    assert actor.exit_code == 0


def test_an_actor_told_to_exit_exits_when_the_run_ends(start_learner, start_actor, tmp_path):
    _, actor = finished_run(start_learner, start_actor, tmp_path, "exit")
    actor.thread.join(timeout=10)
    assert actor.exit_code == 0
