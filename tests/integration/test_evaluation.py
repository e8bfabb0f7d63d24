"""Evaluation during training, in-process over real gRPC: it runs beside the trainer without holding it up,
keeps the best policy as best.pt, and --target-metric eval stops on its result."""

from __future__ import annotations

import pytest

from learner_service import checkpoints
from learner_service.config import LearnerConfig
from relayrl.config import ConfigError, load
from tests.conftest import metric, wait_until


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--eval-every", "0"], "--eval-every"),
        (["--eval-every", "100", "--eval-episodes", "0"], "--eval-episodes"),
        (["--eval-video-every", "2", "--run-dir", "/tmp/x"], "--eval-video-every"),
        (["--eval-video-every", "2", "--eval-every", "100"], "--run-dir"),
        (["--target-metric", "eval", "--target-return", "100"], "--target-metric"),
    ],
)
def test_evaluation_options_are_checked_at_start(argv, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load(LearnerConfig, argv, environ={})


def test_updates_go_on_while_the_policy_is_evaluated(start_learner, start_actor, tmp_path):
    # Pendulum's episodes last 200 steps: 32 of them take a while to play, during which the trainer must
    # keep applying the actor's rollouts (the evaluation holds the trainer's lock only to copy the weights)
    learner = start_learner(env="Pendulum-v1", n_steps=8, eval_every=300, eval_episodes=32, run_dir=tmp_path)
    start_actor(learner.address, num_envs=4)
    evaluator = learner.evaluator
    wait_until(lambda: len(evaluator.history) >= 3, 120, "three evaluations")
    # Stop first: an evaluation is in history before its best.pt and its count are written, and the learner's
    # shutdown lets the one under way finish (a busy machine once caught the count one behind the history).
    learner.close()
    results = list(evaluator.history)
    assert all(len(r.returns) == 32 and r.mean_length == 200 for r in results)
    assert any(r.version_after > r.version for r in results), [(r.version, r.version_after) for r in results]
    assert metric(learner.metrics.registry, "relayrl_evaluations_total") == len(results) >= 3
    best = checkpoints.load(tmp_path / "checkpoints" / "best.pt")
    assert best["eval_mean_return"] == max(r.mean_return for r in results) == evaluator.best
    assert best["env"] == "Pendulum-v1" and set(best["model"]) == set(learner.model.state_dict())
    assert learner.progress.eval_return in [r.mean_return for r in evaluator.history]  # the progress line's


def test_target_metric_eval_stops_on_the_evaluation(start_learner, start_actor):
    # CartPole's greedy returns are at least 8: a target of 5 is met by the first evaluation, whatever
    # the training return (the window of 100 episodes is not even full by then)
    learner = start_learner(eval_every=200, eval_episodes=3, target_return=5, target_metric="eval")
    start_actor(learner.address)
    wait_until(lambda: not learner.thread.is_alive(), 60, "the learner to stop")
    assert learner.stop_reason == "solved"
    evaluated = [r["mean_return"] for r in learner.summary()["eval"]["results"]]
    assert learner.final_return in evaluated and learner.final_return >= 5
