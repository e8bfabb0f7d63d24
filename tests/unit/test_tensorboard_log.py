"""The learner's TensorBoard writer: SB3's tags at the current env steps, and a resumed writer that hides
what the old process wrote after the step it resumed from."""

from __future__ import annotations

import numpy as np
import pytest

from learner_service.progress import Progress
from learner_service.tensorboard_log import TensorBoardLog

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read(log_dir) -> event_accumulator.EventAccumulator:
    events = event_accumulator.EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


def test_points_at_env_steps_with_sb3_tags_and_only_what_is_known(tmp_path):
    progress, last = Progress(), {}
    log = TensorBoardLog(tmp_path, progress, lambda: last)
    log.write()  # nothing known yet: no episode, no update; rates are 0
    progress.record_episodes(1000, np.array([10.0, 30.0]), np.array([10, 30]))
    progress.record_update(1, 512, [0, 2])
    last.update(grad_norm=0.5, learning_rate=1e-3)  # a3c gradients: no loss terms on the learner
    log.write()
    progress.record_episodes(500, np.array([50.0]), np.array([50]))
    last.update(policy_loss=0.1, value_loss=2.0, entropy=0.6, explained_variance=float("nan"))
    log.write()
    log.write_eval(1200, [100.0, 200.0], [100, 200])
    log.close()
    events = read(tmp_path)
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    assert scalars["rollout/ep_rew_mean"] == [(1000, 20.0), (1500, 30.0)]
    assert scalars["rollout/ep_len_mean"] == [(1000, 20.0), (1500, 30.0)]
    assert scalars["train/policy_lag"] == [(1000, 1.0)]  # no update since: no point
    assert [s for s, _ in scalars["train/grad_norm"]] == [1000, 1500]
    assert scalars["train/value_loss"] == [(1500, 2.0)]
    assert scalars["train/entropy_loss"] == [(1500, pytest.approx(-0.6))]
    assert "train/explained_variance" not in scalars  # NaN is left out, not drawn
    assert scalars["eval/mean_reward"] == [(1200, 150.0)] and scalars["eval/mean_ep_length"] == [(1200, 150.0)]
    assert [s for s, _ in scalars["time/fps"]] == [0, 1000, 1500]
    assert [e.step for e in events.Histograms("rollout/ep_rew")] == [1000, 1500]


def test_a_resumed_writer_continues_from_the_checkpoints_steps(tmp_path):
    progress = Progress()
    old = TensorBoardLog(tmp_path, progress, dict)
    for _ in range(6):  # the old process got to 600 env steps; its last checkpoint had 300
        progress.record_episodes(100, np.array([1.0]), np.array([1]))
        old.write()
    old.close()
    resumed = Progress()
    resumed.resume({"env_steps": 300})
    new = TensorBoardLog(tmp_path, resumed, dict, purge_step=300)
    for _ in range(4):
        resumed.record_episodes(100, np.array([2.0]), np.array([1]))
        new.write()
    new.close()
    points = [(e.step, e.value) for e in read(tmp_path).Scalars("rollout/ep_rew_mean")]
    assert [s for s, _ in points] == [100, 200, 400, 500, 600, 700]  # 300 and later of the old run purged
    assert points[2][1] == 2.0
