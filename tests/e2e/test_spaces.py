"""Every kind of space through real actor processes: each Match env (tests/space_envs.py) is learned above a
random policy's return, and a user's own features extractor travels by name; an actor without its module is
refused naming it, while training goes on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.e2e.test_workloads import ACTOR_FLAGS, session

pytestmark = pytest.mark.slow

LENGTH = 8  # tests/space_envs.py: 8 steps an episode, reward = the share of the action's parts that match


@pytest.mark.parametrize(
    "env, random_share",
    [
        ("Match2D-v0", 1 / 3),  # a 2-D Box, flattened
        ("MatchImage-v0", 1 / 3),  # a 6x6x2 channels-last uint8 image: MinAtar's small CNN
        ("MatchDict-v0", 1 / 3),  # Dict(goal: Discrete one-hot, noise: Box)
        ("MatchMultiDiscrete-v0", 1 / 3),  # MultiDiscrete([3, 3]) actions
        ("MatchMultiBinary-v0", 1 / 2),  # MultiBinary(4) actions
    ],
)
def test_each_space_is_learned_above_a_random_policy(start_learner, procs, env, random_share):
    learner = start_learner(env=f"tests.space_envs:{env}", algo="a2c", n_steps=8, preset="none")
    procs("actor", "--learner", learner.address, "--actor-id", "a", "--num-envs", "16", *ACTOR_FLAGS)
    # halfway from a random policy's return to the best: far beyond chance over 100 episodes
    target = LENGTH * (random_share + 1) / 2
    wait_until(lambda: (learner.progress.mean_return() or 0.0) >= target, 90,
               f"{env}: return100 to reach {target:.2f} (random: {LENGTH * random_share:.2f})", interval=0.2)


def test_a_users_extractor_travels_by_name_and_an_actor_without_it_is_refused(
    start_learner, procs, tmp_path, monkeypatch
):
    package = tmp_path / "user_pkg"
    package.mkdir()
    shutil.copy(Path(__file__).parents[1] / "space_envs.py", package / "my_extractors.py")
    monkeypatch.syspath_prepend(str(package))
    learner = start_learner(
        env="tests.space_envs:MatchDict-v0", algo="a2c", n_steps=8, preset="none",
        features_extractor="my_extractors:TinyExtractor", features_kwargs='{"width": 24}',
    )
    assert learner.model.encoder.features_dim == 24
    good = procs("actor", "--learner", learner.address, "--actor-id", "good", "--num-envs", "16", *ACTOR_FLAGS,
                 env={"PYTHONPATH": str(package)})
    bad = procs("actor", "--learner", learner.address, "--actor-id", "bad", "--num-envs", "4", *ACTOR_FLAGS)
    assert bad.wait(timeout=60) != 0
    bad.wait_for(r"cannot import module 'my_extractors'", 1)
    wait_until(lambda: (learner.progress.mean_return() or 0.0) >= LENGTH * 2 / 3, 90,
               "the actor with the extractor to learn MatchDict", interval=0.2)
    assert session(learner, "good").accepted >= 10 and good.popen.poll() is None, "still training"
