"""Real workloads through actor processes: a user's own env given as module:EnvId with env kwargs, and Atari
from pixels with the Nature CNN, whose weights (6.7 MB) are above gRPC's 4 MB default message size."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from relayrl.wire import encode_weights
from tests.conftest import wait_until

ACTOR_FLAGS = (
    *("--metrics-port", "-1", "--health-port", "-1"),
    *("--backoff-initial", "0.05", "--backoff-max", "0.5", "--connect-timeout", "2"),
)


def session(learner, actor_id: str):
    return learner.registry._by_actor.get(actor_id)


def test_own_env_trains_through_actor_processes_and_an_actor_without_its_module_is_refused(
    start_learner, procs, tmp_path, monkeypatch
):
    # The user's package lives outside the repository: the learner and actor "good" have it, "bad" does not.
    package = tmp_path / "user_pkg"
    package.mkdir()
    shutil.copy(Path(__file__).parents[1] / "corridor_env.py", package / "my_corridor.py")
    monkeypatch.syspath_prepend(str(package))
    learner = start_learner(
        env="my_corridor:Corridor-v0", env_kwargs='{"length": 5}', algo="a3c", transport="trajectories", n_steps=8
    )
    assert learner.observation_space.shape == (5,), "the learner made the env with the kwargs"
    good = procs("actor", "--learner", learner.address, "--actor-id", "good", "--num-envs", "4", *ACTOR_FLAGS,
                 env={"PYTHONPATH": str(package)})
    bad = procs("actor", "--learner", learner.address, "--actor-id", "bad", "--num-envs", "4", *ACTOR_FLAGS)
    assert bad.wait(timeout=60) != 0
    bad.wait_for(r"cannot import module 'my_corridor'", 1)
    # Rollouts pass the learner's space check only if made with length 5 (the env's default is 10).
    wait_until(lambda: session(learner, "good") is not None and session(learner, "good").accepted >= 20, 60,
               "the actor with the module to contribute")
    wait_until(lambda: learner.progress.episodes >= 10, 30, "corridor episodes to end")
    assert good.popen.poll() is None, "still training"


def test_atari_weights_above_4mb_reach_every_actor_and_pixels_train(start_learner, procs):
    pytest.importorskip("ale_py")
    learner = start_learner(env="ALE/Pong-v5", algo="a2c", n_steps=5)
    size = encode_weights(learner.model, 0).ByteSize()
    assert size > 4 * 1024 * 1024, f"the test needs weights above gRPC's 4 MB default, got {size}"
    for name in ("a", "b"):
        procs("actor", "--learner", learner.address, "--actor-id", name, "--num-envs", "2", *ACTOR_FLAGS)
    # A2C: an actor sends its next rollout only after the weights its last one produced reached it.
    wait_until(
        lambda: all(session(learner, n) is not None and session(learner, n).accepted >= 3 for n in ("a", "b")),
        90,
        "both actors to receive new 6.7 MB weights versions and contribute with them",
    )
    assert learner.trainer.version >= 2


def test_an_actor_without_torch_is_told_that_pixels_need_it(start_learner, procs, tmp_path):
    pytest.importorskip("ale_py")
    no_torch = tmp_path / "no-torch" / "torch"  # what the slim actor image is like
    no_torch.mkdir(parents=True)
    (no_torch / "__init__.py").write_text('raise ImportError("no torch here")\n')
    learner = start_learner(env="ALE/Pong-v5", algo="a2c", n_steps=5)
    actor = procs("actor", "--learner", learner.address, "--num-envs", "1", *ACTOR_FLAGS,
                  env={"PYTHONPATH": str(no_torch.parent)})
    assert actor.wait(timeout=60) != 0
    actor.wait_for(r"needs torch on the actor \(image observations", 1)
