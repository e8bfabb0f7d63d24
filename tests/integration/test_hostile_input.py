"""Hostile and malformed input against a live learner. For every case: the right gRPC status, one count in
relayrl_rejected_total{reason}, the model bit-for-bit unchanged (no real actor is connected, so nothing
else moves it), and a well-formed message right after is applied."""

from __future__ import annotations

import os

import grpc
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from learner_service.metrics import REJECT_REASONS
from relayrl import codec, wire
from relayrl.v1 import relayrl_pb2 as pb
from tests import clients
from tests.conftest import RunningLearner, metric, wait_until
from tests.helpers import random_rollout

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
TOO_LARGE = grpc.StatusCode.RESOURCE_EXHAUSTED
MAX_BYTES = 64 * 1024
N_STEPS = 4


@pytest.fixture(scope="module")
def trajectories():
    learner = RunningLearner(
        algo="a3c", transport="trajectories", n_steps=N_STEPS, max_message_bytes=MAX_BYTES, max_policy_lag=1000
    )
    yield learner
    learner.close()


@pytest.fixture(scope="module")
def gradients():
    learner = RunningLearner(algo="a3c", transport="gradients", n_steps=N_STEPS, max_policy_lag=1000)
    yield learner
    learner.close()


# --- well-formed messages and their mutations ----------------------------------------------------------
def good_rollout(learner, **changes) -> pb.Rollout:
    message = wire.rollout_to_proto(random_rollout(T=N_STEPS, N=2, version=learner.board.version))
    for name, value in changes.items():
        if isinstance(value, pb.NDArray | pb.EpisodeStats):
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def with_parts(message: pb.Rollout) -> pb.Rollout:
    """A rollout that also carries its observations as a Dict's per-key parts: the learner's space is no Dict."""
    message.observation_parts.add(name="observations", tensor=message.observations)
    return message


def poked(learner, field: str, index: tuple, value) -> pb.ActorMessage:
    """A well-formed rollout with one element of one tensor replaced."""
    message = good_rollout(learner)
    array = codec.decode(getattr(message, field)).copy()
    array[index] = value
    getattr(message, field).CopyFrom(codec.encode(array))
    return rollout(message)


def good_grads(learner) -> dict[str, np.ndarray]:
    return {n: np.zeros(tuple(p.shape), np.float32) for n, p in learner.model.named_parameters()}


def gradient(learner, grads=None, **fields) -> pb.ActorMessage:
    values = dict(policy_version=learner.board.version, env_steps=8)
    values.update(fields)
    return pb.ActorMessage(
        gradient=pb.Gradient(grads=codec.encode_named(good_grads(learner) if grads is None else grads), **values)
    )


def rollout(message: pb.Rollout) -> pb.ActorMessage:
    return pb.ActorMessage(rollout=message)


def hello_message(**fields) -> pb.ActorMessage:
    return pb.ActorMessage(hello=clients.hello(**fields))


# --- the check ------------------------------------------------------------------------------------------
def snapshot(learner) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in learner.model.state_dict().items()}


def rejected(learner) -> dict[str, float]:
    reg = learner.metrics.registry
    return {r: metric(reg, "relayrl_rejected_total", {"reason": r}) for r in REJECT_REASONS}


def assert_unchanged(learner, before: dict[str, torch.Tensor]) -> None:
    after = learner.model.state_dict()
    for name, tensor in before.items():
        assert torch.equal(after[name], tensor), f"{name} changed"


def assert_healthy(learner, message: pb.ActorMessage) -> None:
    """A well-formed contribution on a fresh stream is applied."""
    version = learner.trainer.version
    stream = clients.Stream(clients.channel(learner.address)).send(hello_message())
    assert stream.receive().WhichOneof("kind") == "welcome"
    stream.send(message)
    wait_until(lambda: learner.trainer.version == version + 1, 10, "the next well-formed message to be applied")
    stream.close()


def check(learner, messages, code, reason, good, raw=False) -> None:
    before, counts, version = snapshot(learner), rejected(learner), learner.trainer.version
    got, details = clients.refusal(clients.channel(learner.address), *messages, raw=raw)
    assert (got, reason) == (code, reason), details
    counts[reason] += 1
    assert rejected(learner) == counts, "exactly one refusal, under its reason"
    assert learner.trainer.version == version
    assert_unchanged(learner, before)
    assert_healthy(learner, good(learner))


HELLO = hello_message()

ROLLOUT_CASES = {
    "byte count does not match dtype and shape": (
        lambda L: rollout(good_rollout(L, observations=pb.NDArray(dtype="float32", shape=[4, 2, 4], data=b"\0" * 12))),
        INVALID,
        "invalid_tensor",
    ),
    "unknown dtype": (
        lambda L: rollout(good_rollout(L, rewards=pb.NDArray(dtype="complex64", shape=[4, 2], data=b"\0" * 64))),
        INVALID,
        "invalid_tensor",
    ),
    "pickled object dtype": (
        lambda L: rollout(good_rollout(L, rewards=pb.NDArray(dtype="object", shape=[1], data=b"\0" * 8))),
        INVALID,
        "invalid_tensor",
    ),
    "negative dimension": (
        lambda L: rollout(good_rollout(L, rewards=pb.NDArray(dtype="float32", shape=[-4, 2], data=b""))),
        INVALID,
        "invalid_tensor",
    ),
    "observation shape is not the env's": (
        lambda L: rollout(good_rollout(L, observations=codec.encode(np.zeros((N_STEPS, 2, 5), np.float32)))),
        INVALID,
        "space_mismatch",
    ),
    "rollout length is not n_steps": (
        lambda L: rollout(wire.rollout_to_proto(random_rollout(T=N_STEPS + 1, N=2, version=L.board.version))),
        INVALID,
        "space_mismatch",
    ),
    "inconsistent lengths inside the rollout": (
        lambda L: rollout(good_rollout(L, rewards=codec.encode(np.zeros((N_STEPS - 1, 2), np.float32)))),
        INVALID,
        "malformed",
    ),
    "episode returns and lengths disagree": (
        lambda L: rollout(good_rollout(L, episodes=pb.EpisodeStats(returns=[1.0, 2.0], lengths=[3]))),
        INVALID,
        "malformed",
    ),
    "NaN observation": (
        lambda L: poked(L, "observations", (1, 1, 2), np.nan),
        INVALID,
        "non_finite",
    ),
    "Inf bootstrap observation": (
        lambda L: poked(L, "bootstrap_observations", (0, 0), np.inf),
        INVALID,
        "non_finite",
    ),
    "Inf reward": (
        lambda L: poked(L, "rewards", (0, 1), -np.inf),
        INVALID,
        "non_finite",
    ),
    "NaN episode return": (
        lambda L: rollout(good_rollout(L, episodes=pb.EpisodeStats(returns=[float("nan")], lengths=[3]))),
        INVALID,
        "non_finite",
    ),
    "action outside Discrete(2)": (
        lambda L: poked(L, "actions", (2, 0), 2),
        INVALID,
        "bad_action",
    ),
    "negative action": (
        lambda L: poked(L, "actions", (0, 0), -1),
        INVALID,
        "bad_action",
    ),
    "policy version from the future": (
        lambda L: rollout(good_rollout(L, policy_version=L.board.version + 5)),
        INVALID,
        "future_version",
    ),
    "per-key observation parts for a vector space": (
        lambda L: rollout(with_parts(good_rollout(L))),
        INVALID,
        "space_mismatch",
    ),
    "gradients to a trajectories learner": (lambda L: gradient(L), INVALID, "protocol"),
    "a second Hello": (lambda L: hello_message(), INVALID, "protocol"),
    "an empty message": (lambda L: pb.ActorMessage(), INVALID, "protocol"),
}


@pytest.mark.parametrize("case", list(ROLLOUT_CASES))
def test_bad_rollouts_are_refused_counted_and_harmless(trajectories, case):
    build, code, reason = ROLLOUT_CASES[case]
    check(trajectories, [HELLO, build(trajectories)], code, reason, lambda L: rollout(good_rollout(L)))


def _grads(L, drop=None, add=None, change=None):
    grads = good_grads(L)
    if drop:
        del grads[drop]
    if add:
        grads[add] = np.zeros(3, np.float32)
    if change:
        name, value = change
        grads[name] = value(grads[name])
    return gradient(L, grads)


def _first(L) -> str:
    return next(iter(good_grads(L)))


def _nan(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flat[0] = np.nan
    return a


GRADIENT_CASES = {
    "gradient for an unknown parameter": (lambda L: _grads(L, add="policy.9.weight"), INVALID, "unknown_parameter"),
    "a parameter's gradient missing": (lambda L: _grads(L, drop=_first(L)), INVALID, "unknown_parameter"),
    "gradient shape is not the parameter's": (
        lambda L: _grads(L, change=(_first(L), lambda a: np.zeros(a.shape[::-1] + (1,), np.float32))),
        INVALID,
        "space_mismatch",
    ),
    "float64 gradient": (
        lambda L: _grads(L, change=(_first(L), lambda a: a.astype(np.float64))),
        INVALID,
        "space_mismatch",
    ),
    "NaN gradient": (lambda L: _grads(L, change=(_first(L), _nan)), INVALID, "non_finite"),
    "gradient byte count": (
        lambda L: pb.ActorMessage(
            gradient=pb.Gradient(
                policy_version=L.board.version,
                grads=[pb.NamedTensor(name=_first(L), tensor=pb.NDArray(dtype="float32", shape=[2, 2], data=b"x"))],
            )
        ),
        INVALID,
        "invalid_tensor",
    ),
    "gradient from the future": (
        lambda L: gradient(L, policy_version=L.board.version + 1),
        INVALID,
        "future_version",
    ),
    "implausible env_steps": (lambda L: gradient(L, env_steps=1 << 40), INVALID, "malformed"),
    "rollout to a gradients learner": (lambda L: rollout(good_rollout(L)), INVALID, "protocol"),
}


@pytest.mark.parametrize("case", list(GRADIENT_CASES))
def test_bad_gradients_are_refused_counted_and_harmless(gradients, case):
    build, code, reason = GRADIENT_CASES[case]
    check(gradients, [HELLO, build(gradients)], code, reason, gradient)


HELLO_CASES = {
    "first message is not a Hello": (lambda L: rollout(good_rollout(L)), INVALID, "protocol"),
    "another proto version": (lambda L: hello_message(proto_version=7), PRECONDITION, "wrong_proto_version"),
    "an actor from before Dict spaces": (lambda L: hello_message(proto_version=3), PRECONDITION, "wrong_proto_version"),
    "unspecified proto version": (lambda L: hello_message(proto_version=0), PRECONDITION, "wrong_proto_version"),
    "another environment": (lambda L: hello_message(env_id="Pendulum-v1"), PRECONDITION, "wrong_env"),
    "another observation space": (
        lambda L: hello_message(
            env_id="CartPole-v1",
            observation_space=pb.Space(
                kind=pb.Space.BOX,
                shape=[5],
                low=codec.encode(np.zeros(5, np.float32)),
                high=codec.encode(np.ones(5, np.float32)),
            ),
        ),
        PRECONDITION,
        "space_mismatch",
    ),
    "no actor id": (lambda L: hello_message(actor_id=""), INVALID, "malformed"),
    "a 10 kB actor id": (lambda L: hello_message(actor_id="a" * 10_000), INVALID, "malformed"),
    "an actor id with a newline": (lambda L: hello_message(actor_id="a\nb"), INVALID, "malformed"),
}


@pytest.mark.parametrize("case", list(HELLO_CASES))
def test_bad_hellos_are_refused_counted_and_harmless(trajectories, case):
    build, code, reason = HELLO_CASES[case]
    check(trajectories, [build(trajectories)], code, reason, lambda L: rollout(good_rollout(L)))


def test_random_bytes_are_refused_as_malformed(trajectories):
    junk = b"\xff\xfe\xfd" + os.urandom(200)
    good = lambda L: rollout(good_rollout(L))  # noqa: E731
    check(trajectories, [junk], INVALID, "malformed", good, raw=True)  # in place of the Hello
    check(trajectories, [HELLO.SerializeToString(), junk], INVALID, "malformed", good, raw=True)


def test_messages_over_the_limit_are_refused_and_counted(trajectories):
    good = lambda L: rollout(good_rollout(L))  # noqa: E731
    big = pb.ActorMessage(
        rollout=good_rollout(trajectories, observations=codec.encode(np.zeros((N_STEPS, 2, 3000), np.float32)))
    )
    assert MAX_BYTES < big.ByteSize() < 2 * MAX_BYTES
    check(trajectories, [HELLO, big], TOO_LARGE, "too_large", good)
    check(trajectories, [b"\0" * (MAX_BYTES + 1)], TOO_LARGE, "too_large", good, raw=True)
    # Beyond twice the limit gRPC itself refuses with the same code before RelayRL sees a byte (uncounted).
    counts = rejected(trajectories)
    code, _ = clients.refusal(
        clients.channel(trajectories.address), HELLO.SerializeToString(), b"\0" * (3 * MAX_BYTES), raw=True
    )
    assert code == TOO_LARGE and rejected(trajectories) == counts
    assert_healthy(trajectories, good(trajectories))


def test_a_duplicate_actor_is_refused_and_the_first_keeps_its_stream(trajectories):
    first = clients.Stream(clients.channel(trajectories.address)).send(hello_message(actor_id="twin"))
    assert first.receive().WhichOneof("kind") == "welcome"
    before, counts = snapshot(trajectories), rejected(trajectories)
    # another process (another run id) claiming the same actor id while the first is connected
    code, _ = clients.refusal(clients.channel(trajectories.address), hello_message(actor_id="twin"))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    counts["duplicate_actor"] += 1
    assert rejected(trajectories) == counts
    assert_unchanged(trajectories, before)
    version = trajectories.trainer.version
    first.send(rollout(good_rollout(trajectories)))  # the original stream is unaffected
    assert first.receive().weights.version == version + 1
    first.close()


def test_the_same_process_reconnecting_replaces_its_stale_stream(trajectories):
    """After a cut the actor may notice first: its new stream (same run id) must not wait for the old one."""
    hello = hello_message(actor_id="cut-off")
    stale = clients.Stream(clients.channel(trajectories.address)).send(hello)
    assert stale.receive().WhichOneof("kind") == "welcome"
    counts = rejected(trajectories)
    fresh = clients.Stream(clients.channel(trajectories.address)).send(hello)
    assert fresh.receive().WhichOneof("kind") == "welcome"
    assert stale.status() == grpc.StatusCode.OK, "the stale stream is ended by the learner"
    assert rejected(trajectories) == counts
    version = trajectories.trainer.version
    fresh.send(rollout(good_rollout(trajectories)))
    assert fresh.receive().weights.version == version + 1
    fresh.close()
    stale.close()


# --- property: whatever is sent, a refusal is counted once and changes nothing ---------------------------
TENSORS = (
    "observations",
    "actions",
    "rewards",
    "terminated",
    "truncated",
    "valid",
    "log_probs",
    "bootstrap_observations",
)
DTYPES = ("float32", "float64", "int64", "int32", "bool", "uint8", "float16", "complex64", "object", "<f4", "", "U8")


@st.composite
def tensor_mutation(draw):
    field = draw(st.sampled_from(TENSORS))
    kind = draw(st.sampled_from(("dtype", "shape", "data", "value")))
    if kind == "dtype":
        return field, kind, draw(st.sampled_from(DTYPES) | st.text(max_size=12))
    if kind == "shape":
        return field, kind, draw(st.lists(st.integers(-3, 1 << 40) | st.integers(0, 9), max_size=10))
    if kind == "data":
        return field, kind, draw(st.binary(max_size=300))
    return field, kind, draw(st.sampled_from((np.nan, np.inf, -np.inf, -1, 2, 1e30, 255)))


def mutate(message: pb.Rollout, mutation) -> pb.Rollout:
    field, kind, value = mutation
    tensor = getattr(message, field)
    if kind == "dtype":
        tensor.dtype = value
    elif kind == "shape":
        del tensor.shape[:]
        tensor.shape.extend(value)
    elif kind == "data":
        tensor.data = value
    else:
        array = codec.decode(tensor).copy()
        try:
            array.flat[0] = value
        except (OverflowError, ValueError):
            array.flat[0] = -1
        tensor.CopyFrom(codec.encode(array))
    return message


@st.composite
def hostile(draw):
    """(messages, raw): a Hello then one mutated contribution, or raw bytes in either place."""
    choice = draw(st.sampled_from(("tensor", "version", "episodes", "bytes_first", "bytes_after")))
    if choice == "bytes_first":
        return [draw(st.binary(max_size=200))], True
    if choice == "bytes_after":
        return [HELLO.SerializeToString(), draw(st.binary(max_size=200))], True
    if choice == "tensor":
        return [HELLO, ("tensor", draw(tensor_mutation()))], False
    if choice == "version":
        return [HELLO, ("version", draw(st.integers(1, 1 << 63)))], False
    n = draw(st.integers(0, 4))
    returns = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=n, max_size=n + 1))
    return [HELLO, ("episodes", (returns, [1] * n))], False


def build(learner, item):
    if not isinstance(item, tuple):
        return item
    kind, value = item
    message = good_rollout(learner)
    if kind == "tensor":
        mutate(message, value)
    elif kind == "version":
        message.policy_version = learner.board.version + value
    else:
        message.episodes.CopyFrom(pb.EpisodeStats(returns=value[0], lengths=value[1]))
    return rollout(message)


REFUSAL_CODES = {INVALID, PRECONDITION, TOO_LARGE}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=hostile())
def test_any_message_is_either_applied_or_refused_counted_and_harmless(trajectories, case):
    messages, raw = case
    learner = trajectories
    before, counts, version = snapshot(learner), rejected(learner), learner.trainer.version
    stream = clients.Stream(clients.channel(learner.address), raw=raw, timeout=15)
    for item in messages:
        message = build(learner, item)
        stream.send(message.SerializeToString() if raw and not isinstance(message, bytes) else message)
    try:
        replies = [stream.receive()]  # the Welcome, or the refusal of a bad first message
        if len(messages) > 1 and replies[0].WhichOneof("kind") == "welcome":
            replies.append(stream.receive())  # new weights once applied, or the refusal
        code = None
    except grpc.RpcError as exc:
        code = exc.code()
    finally:
        stream.close()
    now = rejected(learner)
    refusals = {r: now[r] - counts[r] for r in now if now[r] != counts[r]}
    event(f"{code.name if code else 'accepted'} {' '.join(refusals)}")
    if code is None:  # accepted (a valid message, or a valid Hello made of random bytes)
        # Finite values whose loss overflows float32 (rewards of 1e30, say) pass the wire checks; the
        # update then skips them, counted as non_finite, and the model stays as it was.
        assert refusals in ({}, {"non_finite": 1}), refusals
        if refusals:
            assert_unchanged(learner, before)
    else:
        assert code in REFUSAL_CODES
        assert sum(refusals.values()) == 1, refusals
        assert learner.trainer.version == version
        assert_unchanged(learner, before)
