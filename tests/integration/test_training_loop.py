"""A2C and A3C over real gRPC on loopback: learner in-process, actors in threads, CartPole envs."""

import threading

import numpy as np
import pytest

from learner_service import checkpoints
from relayrl import wire
from relayrl.v1 import relayrl_pb2 as pb
from tests.conftest import metric, wait_until
from tests.helpers import RawActor, random_rollout


def test_a2c_rounds_are_on_policy(start_learner, start_actor):
    learner = start_learner(algo="a2c", n_steps=4)
    a, b = start_actor(learner.address, actor_id="a"), start_actor(learner.address, actor_id="b")
    reg = learner.metrics.registry
    wait_until(lambda: metric(reg, "relayrl_updates_total") >= 30, 60, "30 A2C updates")
    assert metric(reg, "relayrl_policy_lag_sum") == 0, "every A2C sample comes from the current policy"
    assert metric(reg, "relayrl_policy_lag_count") >= 30
    # an actor that joins while round 0 closes on the other one's rollout has its first rollout dropped
    # (counted, never trained on); after that nothing is
    assert metric(reg, "relayrl_dropped_stale_total") <= 1
    # once both are connected, every round holds one rollout from each: 2 x 4 steps x 4 envs samples
    wait_until(lambda: learner.registry.live_count() == 2, 10, "both actors connected")
    before = (metric(reg, "relayrl_updates_total"), metric(reg, "relayrl_samples_total"))
    drops = metric(reg, "relayrl_dropped_stale_total")
    wait_until(lambda: metric(reg, "relayrl_updates_total") >= before[0] + 10, 30, "10 more updates")
    after = (metric(reg, "relayrl_updates_total"), metric(reg, "relayrl_samples_total"))
    assert learner.registry.live_count() == 2
    assert metric(reg, "relayrl_dropped_stale_total") == drops, "no drops once both are in the rounds"
    a.close(), b.close()
    updates, samples = after[0] - before[0], after[1] - before[1]
    assert samples >= (updates - 1) * 32, "rounds close with both actors' rollouts"
    assert learner.trainer.version == metric(reg, "relayrl_updates_total")


def test_a2c_round_waits_for_live_actors_and_closes_when_one_dies(start_learner, start_actor):
    learner = start_learner(algo="a2c", n_steps=4, round_timeout=60)
    silent = RawActor(learner.address, actor_id="silent")
    assert silent.receive().WhichOneof("kind") == "welcome"
    start_actor(learner.address, actor_id="worker")
    wait_until(lambda: learner.registry.live_count() == 2, 10, "both connected")
    # the worker delivered, the silent actor is alive: round 0 must wait (round_timeout is 60 s)
    wait_until(lambda: learner.coordinator.depth() == 1, 20, "the worker's first rollout in the open round")
    assert learner.progress.env_steps == 0  # counted when the round is applied, not on arrival
    assert learner.trainer.version == 0
    silent.close()  # dies mid-round
    wait_until(lambda: learner.trainer.version >= 5, 15, "rounds to resume without the dead actor")


def test_a2c_round_closes_on_a_hung_actor_after_the_timeout(start_learner, start_actor):
    learner = start_learner(algo="a2c", n_steps=4, round_timeout=0.3)
    hung = RawActor(learner.address, actor_id="hung")
    hung.receive()
    start_actor(learner.address, actor_id="worker")
    wait_until(lambda: learner.trainer.version >= 3, 20, "rounds closing on the timeout")
    assert learner.registry.live_count() == 2
    hung.close()


@pytest.mark.parametrize("transport", ["gradients", "trajectories"])
def test_a3c_applies_every_contribution_from_two_actors(start_learner, start_actor, transport):
    learner = start_learner(algo="a3c", transport=transport, n_steps=4, max_policy_lag=1000)
    actors = [start_actor(learner.address, actor_id=name) for name in ("a", "b")]
    reg = learner.metrics.registry
    wait_until(
        lambda: all(metric(a.metrics.registry, "relayrl_env_steps_total") >= 160 for a in actors),
        60,
        "both actors contributing",
    )
    for a in actors:
        a.close()
    sent = sum(a.sent for a in actors)  # contributions gRPC took
    assert all(a.sent > 0 for a in actors)
    # everything both actors sent is applied, one optimizer step per contribution
    wait_until(lambda: metric(reg, "relayrl_updates_total") == sent, 20, "the queue to drain")
    assert learner.trainer.version == sent
    assert metric(reg, "relayrl_dropped_stale_total") == 0
    # Samples: every transition of a rollout (4 steps x 4 envs); a gradient reports its real env steps,
    # which leave out Gymnasium's autoreset steps.
    samples = metric(reg, "relayrl_samples_total")
    if transport == "trajectories":
        assert samples == 16 * sent
    else:
        assert samples == metric(reg, "relayrl_env_steps_total") and 0.8 * 16 * sent < samples < 16 * sent


def test_a3c_drops_contributions_beyond_the_lag_limit(start_learner):
    learner = start_learner(algo="a3c", transport="trajectories", n_steps=5, max_policy_lag=0)
    raw = RawActor(learner.address)
    raw.receive()
    message = wire.rollout_to_proto(random_rollout(T=5, N=2, version=0))
    for _ in range(3):  # all three claim version 0; after the first update, the others are stale
        raw.send(pb.ActorMessage(rollout=message))
    reg = learner.metrics.registry
    wait_until(
        lambda: metric(reg, "relayrl_updates_total") + metric(reg, "relayrl_dropped_stale_total") == 3,
        10,
        "three contributions handled",
    )
    assert metric(reg, "relayrl_updates_total") == 1
    assert metric(reg, "relayrl_dropped_stale_total") == 2
    raw.close()


def test_weights_reach_every_actor_including_a_busy_one(start_learner, start_actor):
    """A slow actor that never reads still gets the newest version when it does."""
    learner = start_learner(algo="a3c", transport="gradients", n_steps=4)
    start_actor(learner.address, actor_id="worker")
    idle = RawActor(learner.address, actor_id="idle")
    assert idle.receive().WhichOneof("kind") == "welcome"
    wait_until(lambda: learner.trainer.version >= 20, 30, "20 updates")
    seen = 0
    while seen < learner.trainer.version - 5:
        message = idle.receive()
        assert message.WhichOneof("kind") == "weights"
        seen = message.weights.version
    idle.close()


def test_checkpoint_and_resume_continue_the_version(start_learner, start_actor, tmp_path):
    first = start_learner(algo="a2c", n_steps=4, checkpoint_dir=str(tmp_path))
    actor = start_actor(first.address, actor_id="a")
    wait_until(lambda: first.trainer.version >= 10, 30, "10 updates")
    actor.close()
    first.close()  # shutdown writes the final checkpoint
    _, saved = checkpoints.load_latest(tmp_path)
    assert saved["version"] == first.trainer.version and saved["env_steps"] == first.progress.env_steps

    second = start_learner(algo="a2c", n_steps=4, checkpoint_dir=str(tmp_path), resume=True)
    assert second.trainer.version == saved["version"]
    assert second.progress.env_steps == saved["env_steps"]
    for name, tensor in saved["model"].items():
        assert np.array_equal(second.model.state_dict()[name].cpu().numpy(), tensor.numpy()), name
    raw = RawActor(second.address)
    assert raw.receive().welcome.weights.version == saved["version"]
    raw.close()
    start_actor(second.address, actor_id="b")
    wait_until(lambda: second.trainer.version >= saved["version"] + 5, 30, "training to go on after resume")


def test_stop_message_ends_actors(start_learner, start_actor):
    learner = start_learner(algo="a2c", n_steps=4, max_env_steps=400)
    actor = start_actor(learner.address)
    wait_until(lambda: actor.exit_code is not None, 30, "the actor to exit on the learner's Stop")
    assert actor.exit_code == 0
    learner.thread.join(timeout=10)
    assert learner.stop_reason == "max_env_steps"


def test_hello_for_another_env_is_refused(start_learner):
    import grpc

    learner = start_learner()
    raw = RawActor(
        learner.address,
        hello=pb.Hello(proto_version=pb.PROTO_VERSION_CURRENT, actor_id="x", run_id="r", env_id="Pendulum-v1"),
    )
    with pytest.raises(grpc.RpcError) as err:
        raw.receive()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert metric(learner.metrics.registry, "relayrl_rejected_total", {"reason": "wrong_env"}) == 1
    threading.Thread(target=raw.close).start()


def test_an_overflowing_rollout_is_refused_and_leaves_the_model_intact(start_learner):
    """Finite but extreme rewards overflow the returns: the update is skipped, counted, the model unchanged."""
    import torch

    learner = start_learner(algo="a3c", transport="trajectories", n_steps=5, max_policy_lag=1000)
    before = {k: v.clone() for k, v in learner.model.state_dict().items()}
    raw = RawActor(learner.address)
    raw.receive()
    bad = random_rollout(T=5, N=2, version=0)
    bad.rewards[:] = 3e38
    raw.send(pb.ActorMessage(rollout=wire.rollout_to_proto(bad)))
    reg = learner.metrics.registry
    wait_until(lambda: metric(reg, "relayrl_rejected_total", {"reason": "non_finite"}) == 1, 10, "the refusal")
    assert all(torch.equal(before[k], v) for k, v in learner.model.state_dict().items())
    raw.send(pb.ActorMessage(rollout=wire.rollout_to_proto(random_rollout(T=5, N=2, version=0))))
    wait_until(lambda: metric(reg, "relayrl_updates_total") == 1, 10, "the next good rollout applied")
    raw.close()
