"""A3C's staleness cap grows with the connected actors, and every drop is counted, shown and (rate-limited)
logged: a real trainer, model, optimizer and queue, fed gradients from several sessions."""

from __future__ import annotations

import logging

import gymnasium as gym
import numpy as np
import pytest

from learner_service.coordinators import AsyncQueue, Contribution, SyncRounds
from learner_service.metrics import LearnerMetrics
from learner_service.optim import make_optimizer
from learner_service.progress import Progress, ProgressPrinter
from learner_service.sessions import WeightsBoard
from learner_service.trainer import LAG_PER_ACTOR, Trainer
from relayrl.loss import LossConfig
from relayrl.model import ActorCritic
from tests.conftest import metric


def make_trainer(coordinator, connected: list[int], max_policy_lag: int = 8, version: int = 100):
    model = ActorCritic(gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(2), (8,))
    metrics, progress = LearnerMetrics(), Progress()
    trainer = Trainer(
        model,
        make_optimizer("adam", model.parameters(), 1e-3, 0.99, 1e-5),
        coordinator,
        WeightsBoard(),
        progress,
        metrics,
        LossConfig(gamma=0.99, gae_lambda=1.0, value_coef=0.5, entropy_coef=0.0, normalize_advantage=True),
        0.5,
        max_policy_lag,
        version=version,
        connected=lambda: connected[0],
    )
    return trainer, model, metrics, progress


def gradient(model, session: int, version: int) -> Contribution:
    grads = {name: np.full(tuple(p.shape), 0.01, np.float32) for name, p in model.named_parameters()}
    return Contribution(session, version, 16, grads=grads)


def applied(trainer, model, session: int, lag: int) -> bool:
    return trainer.step([gradient(model, session, trainer.version - lag)])


def test_the_a3c_lag_cap_grows_with_the_connected_actors():
    connected = [1]
    trainer, model, metrics, progress = make_trainer(AsyncQueue(8), connected)
    assert trainer.lag_cap() == 8  # a lone actor: --max-policy-lag
    assert applied(trainer, model, 0, 8) and not applied(trainer, model, 0, 9)

    connected[0] = 4
    cap = 8 + 3 * LAG_PER_ACTOR
    assert trainer.lag_cap() == cap
    # four sessions, each at a lag the old fixed cap of 8 dropped: all applied now
    versions_before = trainer.version
    for session, lag in enumerate((9, 12, 15, cap)):
        assert applied(trainer, model, session, lag), f"lag {lag} with 4 actors connected"
    assert trainer.version == versions_before + 4
    assert not applied(trainer, model, 3, cap + 1), "beyond the scaled cap it is still dropped"

    connected[0] = 64
    assert trainer.lag_cap() == 8 + 63 * LAG_PER_ACTOR
    assert metric(metrics.registry, "relayrl_dropped_stale_total") == 2
    assert progress.dropped == 2


def test_a2c_stays_on_policy_whatever_the_actors():
    connected = [16]
    trainer, model, metrics, progress = make_trainer(SyncRounds(timeout=1.0), connected, max_policy_lag=0)
    assert trainer.lag_cap() == 0
    version = trainer.version
    assert not applied(trainer, model, 0, 1), "one version behind is already too stale for A2C"
    assert trainer.version == version and progress.dropped == 1
    assert metric(metrics.registry, "relayrl_dropped_stale_total") == 1
    assert applied(trainer, model, 1, 0) and trainer.version == version + 1


def test_drops_show_in_the_progress_line_and_the_log_rate_limited(caplog):
    connected = [2]
    trainer, model, metrics, progress = make_trainer(AsyncQueue(8), connected, max_policy_lag=0)
    printer = ProgressPrinter(progress)
    assert "dropped=0" in printer.line()
    with caplog.at_level(logging.WARNING, logger="learner_service.trainer"):
        for session in range(6):
            assert not applied(trainer, model, session % 2, 50)
    warnings = [r.getMessage() for r in caplog.records if "stale contribution" in r.getMessage()]
    assert len(warnings) == 1, warnings  # six drops within a second: one warning
    assert "lag 50 > cap 4 with 2 actors connected" in warnings[0]
    assert metric(metrics.registry, "relayrl_dropped_stale_total") == 6
    assert "dropped=6" in printer.line()


@pytest.mark.parametrize("lag", [0, 3])
def test_fresh_contributions_are_applied_and_not_counted_as_dropped(lag):
    trainer, model, metrics, progress = make_trainer(AsyncQueue(8), [3], max_policy_lag=0)
    assert applied(trainer, model, 0, lag)
    assert progress.dropped == 0 and progress.updates == 1


@pytest.mark.parametrize("coordinator", [AsyncQueue(8), SyncRounds(timeout=1.0)], ids=["a3c", "a2c"])
def test_a_new_version_is_published_without_an_update_and_read_back_whole(coordinator):
    trainer, model, metrics, progress = make_trainer(coordinator, [1])
    board = trainer.board
    assert board.snapshot()[0] == 100
    assert trainer.publish_new_version() == 101
    version, message = board.snapshot()
    assert version == message.weights.version == trainer.version == coordinator.version == 101
    assert message.SerializeToString() == board.payload, "serialized once, for every stream"
    assert metric(metrics.registry, "relayrl_policy_version") == 101
    assert progress.updates == 0
