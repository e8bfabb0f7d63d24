"""The learner keeps training through failed checkpoint writes, refuses to resume a checkpoint its optimizer
cannot load, and reports this process's own rates after a resume. Real learner, real gRPC, real files."""

from __future__ import annotations

import logging
import shutil
import time

import pytest

from learner_service import checkpoints
from learner_service.config import LearnerConfig
from learner_service.learner import Learner
from learner_service.main import main as learner_main
from relayrl.config import ConfigError, load
from tests.conftest import flags, metric, wait_until


def written_checkpoint(directory, env_steps: int = 0, **overrides) -> dict:
    """A checkpoint written by a real (never started) learner; returns what it holds."""
    values = dict(host="127.0.0.1", port=0, metrics_port=-1, hidden_sizes="16,16", checkpoint_dir=directory)
    values.update(overrides)
    learner = Learner(load(LearnerConfig, flags(**values), environ={}))
    try:
        learner.progress.env_steps = env_steps
        return checkpoints.load(learner.checkpoint())
    finally:
        learner.server.stop(0)


def test_a_failed_checkpoint_write_is_counted_and_retried_and_training_goes_on(
    start_learner, start_actor, tmp_path, caplog
):
    directory = tmp_path / "ckpt"
    learner = start_learner(algo="a2c", n_steps=4, checkpoint_dir=directory, checkpoint_every=0.2)
    start_actor(learner.address, actor_id="worker")
    reg = learner.metrics.registry
    wait_until(lambda: len(checkpoints.list_checkpoints(directory)) >= 1, 60, "a first checkpoint")

    # The checkpoint directory becomes a file (root ignores chmod, so this is the unwritable directory).
    with caplog.at_level(logging.ERROR, logger="relayrl.learner"):
        shutil.rmtree(directory)
        directory.write_text("not a directory")
        broken_at, version = time.monotonic(), learner.trainer.version
        wait_until(lambda: metric(reg, "relayrl_checkpoint_failures_total") >= 3, 30, "three failed writes")
        failures, elapsed = metric(reg, "relayrl_checkpoint_failures_total"), time.monotonic() - broken_at
        assert learner.trainer.version > version + 3, "training goes on"
        assert not learner.stop.is_set()
        # retried once per interval, not after every update (hundreds of updates happened meanwhile)
        assert failures <= elapsed / 0.2 + 2, (failures, elapsed)
        assert learner.trainer.version - version > 2 * failures
    assert "checkpoint to" in caplog.text and "failed" in caplog.text and "retrying in 0.2s" in caplog.text

    # The directory comes back: the next interval's write succeeds, with the current version.
    directory.unlink()
    healed_version = learner.trainer.version
    wait_until(lambda: len(checkpoints.list_checkpoints(directory)) >= 1, 30, "a checkpoint after the fix")
    assert checkpoints.load_latest(directory)[1]["version"] >= healed_version
    assert metric(reg, "relayrl_checkpoint_seconds_count") >= 2


def test_resume_with_another_optimizer_fails_at_start_naming_the_option(tmp_path, capsys):
    written_checkpoint(tmp_path, optimizer="adam")
    args = flags(host="127.0.0.1", port=0, metrics_port=-1, hidden_sizes="16,16", checkpoint_dir=tmp_path)
    args += ["--resume", "--optimizer", "rmsprop"]
    with pytest.raises(ConfigError, match=r"--optimizer .*written with --optimizer adam.*asks for rmsprop"):
        Learner(load(LearnerConfig, args, environ={}))
    assert learner_main(args) == 2, "a configuration error, like the others"
    assert "relayrl learner: error: --optimizer" in capsys.readouterr().err


def test_a_checkpoint_from_before_optimizers_were_recorded_is_recognised(tmp_path):
    state = written_checkpoint(tmp_path, optimizer="rmsprop")
    assert checkpoints.saved_optimizer(state) == "rmsprop"
    del state["optimizer_name"]  # as written by earlier versions
    assert checkpoints.saved_optimizer(state) == "rmsprop", "told by its square_avg statistics"
    state["optimizer"] = written_checkpoint(tmp_path / "adam", optimizer="adam")["optimizer"]
    assert checkpoints.saved_optimizer(state) == "adam"


def test_resume_with_the_same_optimizer_takes_this_runs_learning_rate(tmp_path):
    saved = written_checkpoint(tmp_path, optimizer="rmsprop", lr=7e-4)
    values = dict(host="127.0.0.1", port=0, metrics_port=-1, hidden_sizes="16,16", checkpoint_dir=tmp_path)
    config = load(LearnerConfig, flags(**values) + ["--resume", "--optimizer", "rmsprop", "--lr", "1e-4"], environ={})
    learner = Learner(config)
    try:
        assert learner.optimizer.lr == pytest.approx(1e-4)
        assert learner.optimizer.state_dict()["steps"] == saved["optimizer"]["steps"]
    finally:
        learner.server.stop(0)


def test_rates_after_a_resume_are_this_processs_own(start_learner, start_actor, tmp_path):
    resumed_steps = 10**9  # as after a long run: counted on, but not done by this process
    written_checkpoint(tmp_path, env_steps=resumed_steps)
    learner = start_learner(algo="a2c", n_steps=4, checkpoint_dir=tmp_path, resume=True)
    start_actor(learner.address, actor_id="worker")
    wait_until(lambda: learner.progress.env_steps >= resumed_steps + 2000, 60, "2000 env steps after the resume")
    summary = learner.summary()
    own = summary["env_steps"] - resumed_steps
    assert summary["resumed_env_steps"] == resumed_steps
    # (a few more steps may arrive while the summary is read; counting the resumed ones would be 10**5 x more)
    assert 0 < summary["steps_per_second"] <= own / summary["wall_seconds"] * 1.1
    assert 0 < summary["steady_steps_per_second"] <= own / summary["training_seconds"] * 1.1


@pytest.mark.parametrize("option", ["normalize_observations", "normalize_rewards"])
def test_resume_with_other_normalisation_fails_at_start_naming_it(tmp_path, option):
    written_checkpoint(tmp_path, **{option: True})
    args = flags(host="127.0.0.1", port=0, metrics_port=-1, hidden_sizes="16,16", checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match=f"--{option.replace('_', '-')} .*written with it"):
        Learner(load(LearnerConfig, [*args, "--resume"], environ={}))


def test_resume_keeps_the_normalisation_statistics(tmp_path):
    saved = written_checkpoint(tmp_path, normalize_observations=True)
    saved["model"]["obs_mean"].fill_(3.0)
    checkpoints.save(tmp_path, saved, keep=3)
    args = flags(host="127.0.0.1", port=0, metrics_port=-1, hidden_sizes="16,16", checkpoint_dir=tmp_path)
    learner = Learner(load(LearnerConfig, [*args, "--resume", "--normalize-observations"], environ={}))
    try:
        assert learner.model.obs_mean.tolist() == [3.0] * 4
    finally:
        learner.server.stop(0)


def test_resume_with_other_env_kwargs_fails_at_start_naming_them_and_auto_names_apart(tmp_path):
    env = "tests.corridor_env:Corridor-v0"
    written_checkpoint(tmp_path, env=env, env_kwargs='{"length": 5}')
    args = flags(host="127.0.0.1", port=0, metrics_port=-1, hidden_sizes="16,16", checkpoint_dir=tmp_path, env=env)
    with pytest.raises(ConfigError, match=r"--env-kwargs .*written with env kwargs \{\"length\": 5\}"):
        Learner(load(LearnerConfig, [*args, "--resume", "--env-kwargs", '{"length": 7}'], environ={}))
    learner = Learner(load(LearnerConfig, [*args, "--resume", "--env-kwargs", '{ "length":5 }'], environ={}))
    learner.server.stop(0)  # the same kwargs, written differently, resume

    def auto(kwargs: str) -> str:
        return load(LearnerConfig, ["--env", env, "--env-kwargs", kwargs, "--run-name", "auto"], environ={}).run_name

    assert auto('{"length": 5}') != auto('{"length": 7}') != auto("")
    assert auto('{"length": 5, "x": 1}') == auto('{"x": 1, "length": 5}')
