"""Every observation and action space RelayRL reads: how it is recognised, how it travels, how it is refused."""

from collections import OrderedDict

import gymnasium as gym
import numpy as np
import pytest

from relayrl import codec, spaces
from relayrl.envs import make_vector_env
from relayrl.rollout import Rollout, RolloutError
from relayrl.v1 import relayrl_pb2 as pb
from relayrl.wire import rollout_from_proto, rollout_to_proto

MINATAR = gym.spaces.Box(0, 1, (10, 10, 4), bool)
ATARI = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
DICT = gym.spaces.Dict(OrderedDict(
    [("pixels", gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)), ("goal", gym.spaces.Discrete(4)),
     ("position", gym.spaces.Box(-1.0, 1.0, (2,), np.float64))]
))


@pytest.mark.parametrize(
    "space, image, last, chw",
    [
        (ATARI, True, False, (4, 84, 84)),
        (MINATAR, True, True, (4, 10, 10)),
        (gym.spaces.Box(0.0, 1.0, (64, 64, 3), np.float32), True, True, (3, 64, 64)),
        (gym.spaces.Box(-1.0, 1.0, (64, 64, 3), np.float32), False, None, None),  # floats beyond [0, 1]: a vector
        (gym.spaces.Box(-np.inf, np.inf, (5, 5), np.float32), False, None, None),  # highway-env's Kinematics
        (gym.spaces.Box(0, 255, (84, 84), np.uint8), False, None, None),  # 2-D: flattened, as SB3 does
    ],
)
def test_images_are_recognised_as_sb3_does(space, image, last, chw):
    assert spaces.is_image_space(space) is image
    if image:
        assert spaces.channels_last(space) is last
        assert spaces.image_chw(space) == chw
    else:
        assert spaces.observation_kind(space) == spaces.VECTOR


def test_flat_sizes_and_wire_dtypes_never_widen_pixels():
    assert spaces.flat_dim(gym.spaces.Box(-1, 1, (5, 5))) == 25
    assert spaces.flat_dim(gym.spaces.Discrete(16)) == 16
    assert spaces.flat_dim(gym.spaces.MultiDiscrete([3, 4])) == 7
    assert spaces.wire_dtype(MINATAR) == "bool" and spaces.wire_dtype(ATARI) == "uint8"
    assert spaces.wire_dtype(gym.spaces.Box(-1, 1, (3,), np.float64)) == "float32"
    assert spaces.vector_keys(DICT) == ["position"]  # normalisation: vectors only, never pixels or one-hot parts


@pytest.mark.parametrize(
    "space",
    [MINATAR, DICT, gym.spaces.MultiDiscrete([3, 2, 5]), gym.spaces.MultiBinary(6), gym.spaces.MultiBinary([2, 3]),
     gym.spaces.Discrete(7)],
)
def test_spaces_travel_and_come_back_the_same(space):
    back = codec.decode_space(pb.Space.FromString(codec.encode_space(space).SerializeToString()))
    assert codec.same_space(space, back)
    assert type(back) is type(space)
    if isinstance(space, gym.spaces.Dict):
        assert list(back.spaces) == list(space.spaces), "the sender's key order, not a sorted one"


@pytest.mark.parametrize(
    "message, match",
    [
        (pb.Space(kind=pb.Space.MULTI_DISCRETE, nvec=[3, 0]), "MultiDiscrete"),
        (pb.Space(kind=pb.Space.MULTI_BINARY), "MultiBinary"),
        (pb.Space(kind=pb.Space.DICT), "Dict space with keys"),
        (pb.Space(kind=pb.Space.DICT, spaces=[pb.NamedSpace(name="a", space=pb.Space(kind=pb.Space.DICT))]), "nested"),
        (pb.Space(kind=pb.Space.DICT, spaces=[pb.NamedSpace(name="a", space=pb.Space(kind=pb.Space.DISCRETE, n=2))]
                  * 2), "distinct"),
    ],
)
def test_hostile_spaces_are_refused(message, match):
    with pytest.raises(codec.CodecError, match=match):
        codec.decode_space(message)


def test_unsupported_and_nested_spaces_are_refused_naming_the_part():
    with pytest.raises(spaces.SpaceError, match="nested Dict"):
        spaces.check_observation_space(gym.spaces.Dict({"a": gym.spaces.Dict({"b": gym.spaces.Discrete(2)})}))
    with pytest.raises(spaces.SpaceError, match="unsupported observation space"):
        spaces.check_observation_space(gym.spaces.Text(4))
    with pytest.raises(spaces.SpaceError, match="actions must be"):
        spaces.action_kind(gym.spaces.Box(-1, 1, (2, 2)))


def test_one_hot_blocks():
    out = spaces.one_hot(np.array([[0, 2], [1, 0]]), gym.spaces.MultiDiscrete([2, 3]))
    np.testing.assert_array_equal(out, [[1, 0, 0, 0, 1], [0, 1, 1, 0, 0]])


def dict_rollout(T=3, N=2, seed=0):
    rng = np.random.default_rng(seed)
    obs = {
        "pixels": rng.integers(0, 256, (T, N, 8, 8, 3)).astype(np.uint8),
        "goal": rng.integers(0, 4, (T, N)).astype(np.int64),
        "position": rng.normal(size=(T, N, 2)).astype(np.float32),
    }
    return Rollout(
        observations=obs,
        actions=rng.integers(0, 2, (T, N, 3)).astype(np.int64),
        rewards=np.ones((T, N), np.float32),
        terminated=np.zeros((T, N), bool),
        truncated=np.zeros((T, N), bool),
        valid=np.ones((T, N), bool),
        log_probs=np.zeros((T, N), np.float32),
        bootstrap_observations={key: value[-1] for key, value in obs.items()},
        policy_version=4,
    )


def test_dict_rollouts_travel_one_typed_tensor_per_key():
    rollout = dict_rollout()
    message = pb.Rollout.FromString(rollout_to_proto(rollout).SerializeToString())
    assert [(t.name, t.tensor.dtype) for t in message.observation_parts] == [
        ("pixels", "uint8"), ("goal", "int64"), ("position", "float32")
    ]
    assert not message.observations.data
    back = rollout_from_proto(message, DICT, gym.spaces.MultiBinary(3), 3)
    for key in DICT.spaces:
        np.testing.assert_array_equal(back.observations[key], rollout.observations[key])
        np.testing.assert_array_equal(back.bootstrap_observations[key], rollout.bootstrap_observations[key])


@pytest.mark.parametrize(
    "spoil, match",
    [
        (lambda r: r.observations.pop("goal"), "keys"),
        (lambda r: r.observations.__setitem__("pixels", r.observations["pixels"].astype(np.float32)), "dtype"),
        (lambda r: r.observations["goal"].__setitem__((0, 0), 4), "values outside"),
        (lambda r: r.bootstrap_observations.__setitem__("position", np.zeros((3, 2), np.float32)), "shape"),
    ],
)
def test_dict_rollouts_that_do_not_fit_the_space_are_refused(spoil, match):
    rollout = dict_rollout()
    spoil(rollout)
    message = rollout_to_proto(rollout)
    with pytest.raises(RolloutError, match=match) as info:
        rollout_from_proto(message, DICT, gym.spaces.MultiBinary(3), 3)
    assert info.value.kind == RolloutError.SPACE_MISMATCH


@pytest.mark.parametrize(
    "space, bad",
    [(gym.spaces.MultiBinary(3), 2), (gym.spaces.MultiDiscrete([2, 2, 5]), 2)],
)
def test_multi_actions_outside_their_space_are_refused(space, bad):
    rollout = dict_rollout()
    rollout.actions[0, 0, 1] = bad
    with pytest.raises(RolloutError, match="outside") as info:
        rollout_from_proto(rollout_to_proto(rollout), DICT, space, 3)
    assert info.value.kind == RolloutError.BAD_ACTION


def test_tuple_observations_become_a_dict_keyed_by_position():
    gym.register("TupleObs-v0", entry_point=TupleEnv, max_episode_steps=3)
    env = make_vector_env("TupleObs-v0", 2)
    try:
        assert list(env.single_observation_space.spaces) == ["0", "1"]
        obs, _ = env.reset(seed=0)
        assert obs["0"].shape == (2,) and obs["1"].shape == (2, 3)
        obs, *_ = env.step(np.zeros(2, np.int64))
        assert env.single_observation_space.contains({k: v[0] for k, v in obs.items()})
    finally:
        env.close()


class TupleEnv(gym.Env):
    observation_space = gym.spaces.Tuple((gym.spaces.Discrete(4), gym.spaces.Box(-1, 1, (3,), np.float32)))
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}
