"""A refusal carries its reason as a value, from where the fault was found: the metric's labels stay the
same strings, and a rollout's fault is classified by the kind relayrl.wire gives it, never by its text."""

from __future__ import annotations

import dataclasses

import grpc
import numpy as np
import pytest

from learner_service.metrics import REJECT_REASONS, LearnerMetrics
from learner_service.rejections import Reason, rollout_rejection
from relayrl import wire
from relayrl.rollout import RolloutError
from tests.conftest import metric
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, random_rollout


def test_the_reasons_are_the_metrics_labels_unchanged():
    assert REJECT_REASONS == (
        "malformed", "invalid_tensor", "space_mismatch", "non_finite", "bad_action", "unknown_parameter",
        "wrong_env", "wrong_proto_version", "future_version", "too_large", "duplicate_actor", "unauthenticated",
        "protocol",
    )
    metrics = LearnerMetrics()
    metrics.rejected.labels(Reason.BAD_ACTION).inc()
    assert metric(metrics.registry, "relayrl_rejected_total", {"reason": "bad_action"}) == 1


def faulty(**changes):
    rollout = random_rollout(T=4, N=2)
    return wire.rollout_to_proto(dataclasses.replace(rollout, **changes))


def nan_at(array: np.ndarray) -> np.ndarray:
    array = array.copy()
    array.flat[0] = np.nan
    return array


CASES = {
    "rewards of another length": (lambda r: faulty(rewards=r.rewards[:3]), Reason.MALFORMED),
    "episode returns without lengths": (lambda r: faulty(episode_lengths=r.episode_lengths[:1]), Reason.MALFORMED),
    "float64 observations": (lambda r: faulty(observations=r.observations.astype(np.float64)), Reason.SPACE_MISMATCH),
    "observations of another shape": (lambda r: faulty(observations=r.observations[..., :3]), Reason.SPACE_MISMATCH),
    "float actions": (lambda r: faulty(actions=r.actions.astype(np.float32)), Reason.SPACE_MISMATCH),
    "NaN bootstrap observation": (
        lambda r: faulty(bootstrap_observations=nan_at(r.bootstrap_observations)), Reason.NON_FINITE
    ),
    "NaN reward": (lambda r: faulty(rewards=nan_at(r.rewards)), Reason.NON_FINITE),
    "NaN episode return": (
        lambda r: faulty(episode_returns=np.array([np.nan, 1.0], np.float32)), Reason.NON_FINITE
    ),
    "action 2 in Discrete(2)": (lambda r: faulty(actions=np.full_like(r.actions, 2)), Reason.BAD_ACTION),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_rollouts_fault_is_refused_under_the_reason_of_its_kind(case):
    build, reason = CASES[case]
    with pytest.raises(RolloutError) as raised:
        wire.rollout_from_proto(build(random_rollout(T=4, N=2)), CARTPOLE_OBS, CARTPOLE_ACT, 4)
    rejection = rollout_rejection(raised.value)
    assert (rejection.code, rejection.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert rejection.details == str(raised.value)


def test_the_reason_comes_from_the_kind_not_the_text():
    misleading = RolloutError("actions: outside Discrete(2), contains NaN", RolloutError.MALFORMED)
    assert rollout_rejection(misleading).reason is Reason.MALFORMED
    assert rollout_rejection(RolloutError("anything", RolloutError.BAD_ACTION)).reason is Reason.BAD_ACTION
