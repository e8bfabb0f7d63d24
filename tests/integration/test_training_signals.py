"""The Atari training signals end to end: the learner's --clip-rewards and --episodic-life travel in the
Welcome over real gRPC to an actor, whose collector applies them to what it sends; what the learner trains
on is read where it trains (the trainer's update), and the episode returns it reports stay the true ones.

The env (tests/lives_env.py) pays 2.5 and -4.0 and loses a life every 3 steps: clipped, its rewards are
+-1; with episodic life, every lost life (not only the game's end) is a terminal transition."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from learner_service import trainer as trainer_module
from tests.conftest import wait_until
from tests.lives_env import EPISODE_RETURN, LIVES, REWARDS, STEPS_PER_LIFE

ENV = "tests.lives_env:Lives-v0"


class Seen(list):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()


@pytest.fixture
def trained_on(monkeypatch):
    """Every rollout batch the learner's trainer updates on (copied: the buffers are reused)."""
    seen = Seen()
    real = trainer_module.update_from_rollouts

    def spy(model, optimizer, rollouts, *args, **kwargs):
        with seen.lock:
            seen.extend((r.rewards.copy(), r.terminated.copy(), r.valid.copy()) for r in rollouts)
        return real(model, optimizer, rollouts, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "update_from_rollouts", spy)
    return seen


def run(start_learner, start_actor, trained_on, **signals):
    """Train on Lives-v0 for a few updates; the rewards trained on, and per env the positions (counted in
    the game's own steps, the valid transitions, from the first) of the terminal transitions."""
    learner = start_learner(env=ENV, algo="a2c", n_steps=STEPS_PER_LIFE * LIVES * 2, **signals)
    start_actor(learner.address, actor_id="signals", num_envs=2)
    wait_until(lambda: len(trained_on) >= 3 and learner.progress.episodes >= 4, 30, "three updates on Lives-v0")
    with trained_on.lock:
        batches = list(trained_on)
    rewards = np.concatenate([r[m] for r, _, m in batches])
    terminated = np.concatenate([t for _, t, _ in batches])  # [all steps, envs], in the order collected
    valid = np.concatenate([m for _, _, m in batches])
    ends = [np.flatnonzero(terminated[valid[:, n], n]) + 1 for n in range(valid.shape[1])]
    return learner, rewards, ends, valid.sum(axis=0)


def every(k: int, steps: int) -> list[int]:
    return list(range(k, steps + 1, k))


def test_clipped_rewards_and_lost_lives_reach_what_the_learner_trains_on(start_learner, start_actor, trained_on):
    learner, rewards, ends, steps = run(start_learner, start_actor, trained_on, clip_rewards=True,
                                        episodic_life=True)
    assert learner.config.clip_rewards and learner.config.episodic_life
    assert set(np.unique(rewards)) == {-1.0, 1.0}, "rewards clipped to their sign by the actor"
    for n, positions in enumerate(ends):  # the 3rd, 6th, 9th... step of every game, the game's end included
        assert positions.tolist() == every(STEPS_PER_LIFE, steps[n]), "every lost life is a terminal transition"
    with learner.progress.lock:
        reported = list(learner.progress.returns)
    assert reported and set(reported) == {EPISODE_RETURN}, "episode returns stay the game's true ones"


def test_without_the_signals_the_actor_sends_the_game_as_it_is(start_learner, start_actor, trained_on):
    learner, rewards, ends, steps = run(start_learner, start_actor, trained_on)
    assert not learner.config.clip_rewards and not learner.config.episodic_life
    assert set(np.unique(rewards)) == set(REWARDS)
    for n, positions in enumerate(ends):
        assert positions.tolist() == every(STEPS_PER_LIFE * LIVES, steps[n]), "only the game's end is terminal"
        assert len(positions) >= 2
