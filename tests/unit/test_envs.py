"""Making envs as the learner, actors and eval do: users' own modules and keyword arguments, Atari's spaces."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from relayrl import codec
from relayrl.envs import EnvError, env_kwargs, is_atari, make_vector_env, single_spaces

CORRIDOR = "tests.corridor_env:Corridor-v0"


def test_a_module_id_imports_the_module_and_the_kwargs_reach_the_env():
    obs_space, act_space = single_spaces(CORRIDOR, {"length": 6})
    assert obs_space.shape == (6,) and act_space == gym.spaces.Discrete(2)
    env = make_vector_env(CORRIDOR, 3, {"length": 6})
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 6) and np.all(obs[:, 0] == 1.0)
    env.close()
    assert single_spaces(CORRIDOR)[0].shape == (10,), "without kwargs, the env's own default"


def test_a_module_that_does_not_import_is_named():
    with pytest.raises(EnvError, match="cannot import module 'no_such_pkg.envs'"):
        make_vector_env("no_such_pkg.envs:Thing-v0", 2)


def test_unknown_ids_and_keywords_are_env_errors():
    with pytest.raises(EnvError, match="Nope"):
        single_spaces("Nope-v0")
    with pytest.raises(EnvError, match="bogus"):
        make_vector_env(CORRIDOR, 2, {"bogus": 1})


@pytest.mark.parametrize("text, message", [("[1]", "JSON object"), ("{length: 3}", "not JSON")])
def test_env_kwargs_must_be_a_json_object(text, message):
    with pytest.raises(ValueError, match=message):
        env_kwargs(text)
    assert env_kwargs('{"length": 3}') == {"length": 3} and env_kwargs("") == {}


def test_atari_is_preprocessed_to_stacked_84x84_uint8_frames_with_true_rewards():
    pytest.importorskip("ale_py")
    assert is_atari("ALE/Pong-v5") and not is_atari("CartPole-v1")
    obs_space, act_space = single_spaces("ALE/Pong-v5")
    assert obs_space.shape == (4, 84, 84) and obs_space.dtype == np.uint8 and act_space == gym.spaces.Discrete(6)
    env = make_vector_env("ALE/Breakout-v5", 2)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == (2, 4, 84, 84) and np.all(info["lives"] == 5)
    env.close()
    # The space crosses the wire as uint8, and a float32 space of the same shape is a different one.
    decoded = codec.decode_space(codec.encode_space(obs_space))
    assert decoded.dtype == np.uint8 and codec.same_space(decoded, obs_space)
    assert not codec.same_space(gym.spaces.Box(0, 255, (4, 84, 84), np.float32), obs_space)


def test_breakout_presses_fire_after_each_lost_life():
    """A policy that never presses FIRE still plays Breakout to its end: without FIRE after each lost life
    the game would idle until its 27,000-step time limit."""
    pytest.importorskip("ale_py")
    env = make_vector_env("ALE/Breakout-v5", 1, {"repeat_action_probability": 0.0})
    try:
        env.reset(seed=0)
        for _ in range(5000):
            _, _, terminated, truncated, info = env.step(np.zeros(1, np.int64))
            if terminated[0] or truncated[0]:
                break
        assert terminated[0] and not truncated[0] and info["lives"][0] == 0, "no game over in 5,000 steps"
    finally:
        env.close()
