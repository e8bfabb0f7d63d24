"""Why the learner refuses a message: the reasons (relayrl_rejected_total's ``reason`` label) and the refusal.

A refusal carries its reason as a value from the place that found the fault: nothing downstream reads the
details text, which is for people (the log and the gRPC status).
"""

from __future__ import annotations

import enum

import grpc

from relayrl.rollout import RolloutError


class Reason(enum.StrEnum):
    """A value of relayrl_rejected_total's ``reason`` label (all are created at zero, in this order)."""

    MALFORMED = "malformed"  # not decodable, or inconsistent with itself
    INVALID_TENSOR = "invalid_tensor"  # an NDArray that does not decode (dtype, byte count, shape)
    SPACE_MISMATCH = "space_mismatch"  # against the run's spaces, n_steps or parameter shapes
    NON_FINITE = "non_finite"  # NaN or Inf where a number must be finite
    BAD_ACTION = "bad_action"  # an action outside the action space
    UNKNOWN_PARAMETER = "unknown_parameter"  # gradients for other parameters than the model's
    WRONG_ENV = "wrong_env"
    WRONG_PROTO_VERSION = "wrong_proto_version"
    FUTURE_VERSION = "future_version"  # data from a policy version the learner has not published
    TOO_LARGE = "too_large"  # over --max-message-bytes
    DUPLICATE_ACTOR = "duplicate_actor"  # an actor id in use by another connected process
    UNAUTHENTICATED = "unauthenticated"  # counted by the bearer-token interceptor (security.py)
    PROTOCOL = "protocol"  # the wrong kind of message at this point of the stream


class Rejection(Exception):
    """A message is refused: the stream ends with ``code`` and the metric counts ``reason``."""

    def __init__(self, code: grpc.StatusCode, reason: Reason, details: str):
        super().__init__(details)
        self.code, self.reason, self.details = code, reason, details


def rollout_rejection(error: RolloutError) -> Rejection:
    """The refusal of a rollout or of episode statistics that relayrl.wire found at fault. RolloutError's
    kinds are named as the reasons they are counted under."""
    return Rejection(grpc.StatusCode.INVALID_ARGUMENT, Reason(error.kind), str(error))
