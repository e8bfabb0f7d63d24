"""Tensor codec: round trips, zero-copy decode, and refusal of malformed tensors."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from relayrl import codec
from relayrl.model import ActorCritic
from relayrl.v1 import relayrl_pb2 as pb
from relayrl.wire import encode_weights, load_weights
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool"])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3, 4)])
def test_round_trip(dtype, shape):
    array = (np.arange(int(np.prod(shape))).reshape(shape) % 3).astype(dtype)
    message = pb.NDArray.FromString(codec.encode(array).SerializeToString())
    out = codec.decode(message)
    assert out.dtype == np.dtype(dtype) and out.shape == shape
    np.testing.assert_array_equal(out, array)


def test_encoding_is_little_endian_raw_bytes():
    message = codec.encode(np.array([1, 256], dtype=">i4"))  # big-endian input
    assert message.dtype == "int32" and message.data == b"\x01\x00\x00\x00\x00\x01\x00\x00"


def test_decode_is_a_read_only_view():
    message = codec.encode(np.ones((4, 4), np.float32))
    out = codec.decode(message)
    assert not out.flags.writeable


def test_non_contiguous_and_torch_inputs():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(codec.decode(codec.encode(array)), array)
    tensor = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    np.testing.assert_array_equal(codec.decode(codec.encode(tensor)), tensor.numpy())


@pytest.mark.parametrize(
    "message, fragment",
    [
        (pb.NDArray(dtype="float32", shape=[2, 2], data=b"\x00" * 15), "15 bytes"),
        (pb.NDArray(dtype="float32", shape=[2, 2], data=b"\x00" * 17), "17 bytes"),
        (pb.NDArray(dtype="object", shape=[1], data=b"\x00" * 8), "unknown dtype"),
        (pb.NDArray(dtype="complex128", shape=[1], data=b"\x00" * 16), "unknown dtype"),
        (pb.NDArray(dtype="float32", shape=[-1], data=b""), "invalid shape"),
        (pb.NDArray(dtype="uint8", shape=[1] * 9, data=b"\x00"), "invalid shape"),
        (pb.NDArray(dtype="float32", shape=[1 << 40, 1 << 40], data=b""), "bytes"),
    ],
)
def test_malformed_tensors_are_refused(message, fragment):
    with pytest.raises(codec.CodecError, match=fragment):
        codec.decode(message)


def test_unsendable_dtype():
    with pytest.raises(codec.CodecError):
        codec.encode(np.array(["a"]))


def test_weights_round_trip_into_another_model():
    torch.manual_seed(0)
    a = ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (8,))
    torch.manual_seed(1)
    b = ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (8,))
    weights = pb.Weights.FromString(encode_weights(a, 7).SerializeToString())
    load_weights(b, weights)
    assert weights.version == 7
    for (name, pa), (_, pb_) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb_), name


def test_load_weights_refuses_missing_and_misshapen():
    model = ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    weights = encode_weights(model, 1)
    del weights.tensors[0]
    with pytest.raises(codec.CodecError, match="do not match"):
        load_weights(model, weights)
    other = encode_weights(ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (9,)), 1)
    with pytest.raises(codec.CodecError, match="shape"):
        load_weights(model, other)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_duplicate_names_refused():
    t = codec.encode(np.zeros(2, np.float32))
    with pytest.raises(codec.CodecError, match="twice"):
        codec.decode_named([pb.NamedTensor(name="w", tensor=t), pb.NamedTensor(name="w", tensor=t)])


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Discrete(3),
        gym.spaces.Box(-2.0, 2.0, (1,), np.float32),
        gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
    ],
)
def test_space_round_trip(space):
    back = codec.decode_space(pb.Space.FromString(codec.encode_space(space).SerializeToString()))
    assert codec.same_space(space, back)


def test_space_mismatch_detected():
    assert not codec.same_space(gym.spaces.Discrete(2), gym.spaces.Discrete(3))
    assert not codec.same_space(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Box(-2, 1, (2,)))
    assert not codec.same_space(gym.spaces.MultiDiscrete([2, 3]), gym.spaces.MultiDiscrete([3, 2]))
    assert not codec.same_space(gym.spaces.MultiBinary(3), gym.spaces.MultiDiscrete([2, 2, 2]))
    with pytest.raises(codec.CodecError, match="unsupported"):
        codec.encode_space(gym.spaces.Text(5))
    with pytest.raises(codec.CodecError, match="nested"):
        codec.encode_space(gym.spaces.Dict({"a": gym.spaces.Dict({"b": gym.spaces.Discrete(2)})}))


def test_pixel_rollouts_travel_as_uint8_and_widened_ones_are_refused():
    from relayrl.rollout import RolloutError
    from relayrl.wire import rollout_from_proto, rollout_to_proto
    from tests.helpers import random_rollout

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    rollout = random_rollout(T=5, N=2)
    rng = np.random.default_rng(0)
    rollout.observations = rng.integers(0, 256, (5, 2, 4, 84, 84), dtype=np.uint8)
    rollout.bootstrap_observations = rng.integers(0, 256, (2, 4, 84, 84), dtype=np.uint8)
    message = rollout_to_proto(rollout)
    assert message.ByteSize() < 6 * 4 * 84 * 84 * 2 + 4096, "one byte a pixel on the wire"
    back = rollout_from_proto(message, space, gym.spaces.Discrete(2), 5)
    np.testing.assert_array_equal(back.observations, rollout.observations)
    rollout.observations = rollout.observations.astype(np.float32)
    with pytest.raises(RolloutError, match="dtype float32, expected uint8") as caught:
        rollout_from_proto(rollout_to_proto(rollout), space, gym.spaces.Discrete(2), 5)
    assert caught.value.kind == RolloutError.SPACE_MISMATCH
