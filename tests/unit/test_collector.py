"""The actor's rollout loop on real Gymnasium vector envs: next-step autoreset and episode accounting."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from actor_service.collector import RolloutCollector
from relayrl import codec
from relayrl.envs import FireAfterLifeLoss, make_vector_env
from relayrl.model import ActorCritic
from relayrl.numpy_policy import NumpyPolicy
from relayrl.wire import encode_weights


def collector(env, n_steps=16, log_std=0.0, with_model=False):
    torch.manual_seed(0)
    model = ActorCritic(env.single_observation_space, env.single_action_space, (16,))
    if not model.discrete:
        with torch.no_grad():
            model.log_std.fill_(log_std)
    policy = NumpyPolicy(env.single_action_space, (16,), "tanh", seed=0)  # what actors act with
    policy.load(codec.decode_named(encode_weights(model, 0).tensors))
    c = RolloutCollector(env, policy.act, n_steps, seed=0)
    return (c, model) if with_model else c


def pendulum_successor(obs, action):
    """The observation Pendulum-v1's dynamics give after ``action`` from ``obs`` = (cos th, sin th, thdot)."""
    env = gym.make("Pendulum-v1").unwrapped
    env.reset(seed=0)
    env.state = np.array([np.arctan2(obs[1], obs[0]), obs[2]], np.float64)
    return env.step(np.asarray(action, np.float32))[0]


def test_cartpole_uses_the_numpy_vector_env():
    env = make_vector_env("CartPole-v1", 4)
    assert not isinstance(env, gym.vector.SyncVectorEnv)


def test_autoreset_steps_are_invalid_and_episodes_add_up():
    c = collector(make_vector_env("CartPole-v1", 8), n_steps=64)
    lengths_from_flags, since_reset = [], np.zeros(8, int)
    for _ in range(4):
        r = c.collect(0)  # valid until the next collect: buffers are reused
        ended = r.terminated | r.truncated
        assert ended.any(), "a random CartPole policy ends episodes within 64 steps"
        # the step after every episode end is the reset step, and only those are invalid
        np.testing.assert_array_equal(r.valid[1:], ~ended[:-1])
        assert not (ended & ~r.valid).any()
        assert r.rewards[~r.valid].sum() == 0.0
        # CartPole pays 1 per valid step: every reported return equals its length
        np.testing.assert_array_equal(r.episode_returns, r.episode_lengths.astype(np.float32))
        assert len(r.episode_returns) == int(ended.sum())
        # the reported lengths are the valid steps between resets, counted here from the flags alone
        expected = []
        for t in range(len(r.valid)):
            since_reset += r.valid[t]
            expected += since_reset[ended[t]].tolist()
            since_reset[ended[t]] = 0
        np.testing.assert_array_equal(r.episode_lengths, expected)
        lengths_from_flags += expected
    # CartPole's random-policy episodes last about 22 steps; none shorter than the 8 it takes to fall
    assert min(lengths_from_flags) >= 8 and 10 < np.mean(lengths_from_flags) < 40


def test_first_step_of_a_rollout_after_an_end_is_invalid():
    c = collector(make_vector_env("CartPole-v1", 16), n_steps=8)
    previous = c.collect(0)
    ended_last = (previous.terminated | previous.truncated)[-1].copy()
    for _ in range(50):
        if ended_last.any():
            break
        previous = c.collect(0)
        ended_last = (previous.terminated | previous.truncated)[-1].copy()
    assert ended_last.any()
    nxt = c.collect(0)
    np.testing.assert_array_equal(nxt.valid[0], ~ended_last)


def test_truncation_keeps_the_final_observation_for_bootstrapping():
    # a 5-step time limit: every episode is truncated (never terminated) by a steady policy
    env = gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync", max_episode_steps=5)
    c = collector(env, n_steps=12)
    r = c.collect(0)
    assert r.truncated[4].all() and not r.terminated.any()
    # the observation after the truncating step is that episode's final one, not a reset: bootstrap from it
    assert not r.valid[5].any()
    assert r.truncated[10].all() and not r.valid[11].any()
    np.testing.assert_array_equal(r.episode_lengths, [5, 5, 5, 5])
    for t in (4, 10):
        for n in range(2):
            np.testing.assert_allclose(
                r.observations[t + 1, n], pendulum_successor(r.observations[t, n], r.actions[t, n]), atol=1e-4
            )
    # the autoreset step starts a new episode: its next observation does not follow from its own
    assert not np.allclose(r.observations[6, 0], pendulum_successor(r.observations[5, 0], r.actions[5, 0]), atol=1e-2)
    # a truncation on a rollout's last step: the bootstrap observation is the final one, not a reset
    env = gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync", max_episode_steps=5)
    last = collector(env, n_steps=5).collect(0)
    assert last.truncated[4].all()
    for n in range(2):
        np.testing.assert_allclose(
            last.bootstrap_observations[n], pendulum_successor(last.observations[4, n], last.actions[4, n]), atol=1e-4
        )


def test_box_actions_are_float_and_sent_raw():
    """The rollout carries the unclipped Gaussian sample and its log-prob (the env gets it clipped)."""
    c, model = collector(make_vector_env("Pendulum-v1", 4), n_steps=16, log_std=1.5, with_model=True)
    r = c.collect(3)
    assert r.actions.shape == (16, 4, 1) and r.actions.dtype == np.float32 and r.policy_version == 3
    assert np.abs(r.actions).max() > 2.0, "std e^1.5 = 4.5: some samples fall outside Pendulum's [-2, 2]"
    expected, _ = model.log_prob_entropy(
        torch.from_numpy(r.observations.reshape(64, 3)), torch.from_numpy(r.actions.reshape(64, 1))
    )
    np.testing.assert_allclose(r.log_probs.reshape(-1), expected.detach().numpy(), rtol=1e-4, atol=1e-4)


class Lives(gym.Env):
    """A game of 3 lives, one lost every 4 steps, paying 5 a step: what Atari's training signals act on."""

    observation_space = gym.spaces.Box(0, 255, (1,), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.taken = []  # every action the game received

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.uint8), {"lives": 3}

    def step(self, action):
        self.t += 1
        lives = 3 - self.t // 4
        self.taken.append(int(action))
        return np.full(1, self.t, np.uint8), 5.0, lives == 0, False, {"lives": lives}


def test_clipped_rewards_and_lost_lives_are_what_is_trained_on_but_episodes_stay_true():
    env = gym.vector.SyncVectorEnv([Lives, Lives])
    c = RolloutCollector(env, lambda obs: (np.zeros(len(obs), np.int64), np.zeros(len(obs))), 13, 0, True, True)
    r = c.collect(0)
    assert r.observations.dtype == np.uint8 and r.bootstrap_observations.dtype == np.uint8, "never widened"
    # steps 4 and 8 lose a life (terminated for training, the game goes on), 12 ends the game, 13 resets it
    np.testing.assert_array_equal(np.flatnonzero(r.terminated[:, 0]) + 1, [4, 8, 12])
    np.testing.assert_array_equal(np.flatnonzero(~r.valid[:, 0]) + 1, [13])
    assert set(r.rewards[r.valid].tolist()) == {1.0}, "clipped to the sign"
    np.testing.assert_array_equal(r.episode_returns, [60.0, 60.0])  # 12 steps of 5: the true return
    np.testing.assert_array_equal(r.episode_lengths, [12, 12])

    plain = RolloutCollector(gym.vector.SyncVectorEnv([Lives]), lambda o: (np.zeros(1, np.int64), np.zeros(1)), 13, 0)
    r = plain.collect(0)
    np.testing.assert_array_equal(np.flatnonzero(r.terminated[:, 0]) + 1, [12])
    assert r.rewards[0, 0] == 5.0


def test_fire_after_a_lost_life_is_pressed_for_the_agent_and_not_trained_on():
    games = gym.vector.SyncVectorEnv([Lives, Lives])
    agent = lambda obs: (np.zeros(len(obs), np.int64), np.zeros(len(obs)))  # noqa: E731 (always chooses 0)
    r = RolloutCollector(FireAfterLifeLoss(games, fire=1), agent, 14, 0, episodic_life=True).collect(0)
    taken = games.envs[0].taken[:12]  # the game's actions up to its end (step 13 reset it)
    # lives lost at steps 4 and 8: FIRE at 5 and 9; the game ends at 12 (no FIRE: 13 resets it), 14 is 0 again
    np.testing.assert_array_equal(np.flatnonzero(np.array(taken) == 1) + 1, [5, 9])
    np.testing.assert_array_equal(np.flatnonzero(~r.valid[:, 0]) + 1, [5, 9, 13])
    assert r.num_steps == 2 * 11, "steps the agent did not choose are not counted, as SB3's reset does not"
    np.testing.assert_array_equal(np.flatnonzero(r.terminated[:, 0]) + 1, [4, 8, 12])
    np.testing.assert_array_equal(r.episode_lengths, [12, 12])  # the true game: FIRE steps included
    np.testing.assert_array_equal(r.episode_returns, [60.0, 60.0])


def test_dict_observations_and_bool_grids_are_held_per_key_in_their_own_dtypes():
    import tests.space_envs  # noqa: F401  (registers the Match envs)
    from actor_service.policies import TrajectoryPolicy
    from learner_service.config import LearnerConfig
    from learner_service.run_config import run_config_message
    from relayrl.config import load

    for env_id, dtypes in [("tests.space_envs:MatchDict-v0", {"goal": np.int64, "noise": np.float32}),
                           ("tests.space_envs:MatchImage-v0", np.uint8)]:
        env = make_vector_env(env_id, 3)
        config = run_config_message(load(LearnerConfig, ["--env", env_id, "--n-steps", "4"], environ={}))
        model = ActorCritic(env.single_observation_space, env.single_action_space)
        policy = TrajectoryPolicy(config, env.single_observation_space, env.single_action_space, seed=0)
        policy.load(encode_weights(model, 0))
        rollout = RolloutCollector(env, policy.act, 4, seed=0).collect(0)
        if isinstance(dtypes, dict):
            assert policy.model is None, "a Dict of vectors acts with the torch-free NumPy policy"
            assert {k: v.dtype for k, v in rollout.observations.items()} == dtypes
            assert rollout.observations["goal"].shape == (4, 3)
            assert rollout.bootstrap_observations["noise"].shape == (3, 2)
            # each step's reward scores its action against the goal its observation showed: keys stay aligned
            np.testing.assert_array_equal(rollout.rewards, rollout.actions == rollout.observations["goal"])
        else:
            assert policy.model is not None, "images act with the torch model"
            assert rollout.observations.dtype == dtypes and rollout.observations.shape == (4, 3, 6, 6, 2)
        env.close()


# --- cases the mutation run (docs/MUTATION.md) found unguarded -------------------------------------------------
class NoLifeLost(gym.Env):
    """A game that reports lives but ends without losing one (Pong reports 0 throughout): it ends at step 5."""

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float64)  # float64: the collector sends float32
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self):
        self.taken = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float64), {"lives": 0}

    def step(self, action):
        self.t += 1
        self.taken.append(np.asarray(action).copy())
        return np.full(1, self.t / 10, np.float64), 1.0, self.t == 5, False, {"lives": 0}


def far_actions(obs):
    """Gaussian samples far outside the Box [-1, 1], as a wide policy draws them."""
    return np.full((len(obs), 1), 3.0, np.float32), np.zeros(len(obs), np.float32)


def test_a_game_that_ends_without_losing_a_life_still_ends_for_training():
    r = RolloutCollector(gym.vector.SyncVectorEnv([NoLifeLost]), far_actions, 6, 0, episodic_life=True).collect(0)
    np.testing.assert_array_equal(np.flatnonzero(r.terminated[:, 0]) + 1, [5])


def test_the_env_gets_actions_clipped_to_its_box_and_observations_travel_as_float32():
    env = gym.vector.SyncVectorEnv([NoLifeLost])
    r = RolloutCollector(env, far_actions, 4, 0).collect(0)
    assert np.all(r.actions == 3.0), "the raw sample is trained on"
    assert all(float(a[0]) == 1.0 for a in env.envs[0].taken), "the env gets it clipped to its high bound"
    assert r.observations.dtype == np.float32 and r.bootstrap_observations.dtype == np.float32


def test_episode_returns_and_lengths_have_the_wire_dtypes_with_or_without_episodes():
    env = gym.vector.SyncVectorEnv([NoLifeLost, NoLifeLost])
    c = RolloutCollector(env, far_actions, 3, 0)
    none = c.collect(0)  # 3 steps: no game has ended yet
    assert none.episode_returns.shape == none.episode_lengths.shape == (0,)
    assert none.episode_returns.dtype == np.float32 and none.episode_lengths.dtype == np.uint32
    two = c.collect(1)  # steps 4-6: both games end at step 5
    np.testing.assert_array_equal(two.episode_returns, [5.0, 5.0])
    np.testing.assert_array_equal(two.episode_lengths, [5, 5])
    assert two.episode_returns.dtype == np.float32 and two.episode_lengths.dtype == np.uint32


def test_episodic_life_on_an_env_without_lives_fails_naming_it():
    env = make_vector_env("CartPole-v1", 2)
    message = r"^episodic_life: the env reports no 'lives' in its info \(only Atari envs do\)$"  # the flag, the why
    with pytest.raises(ValueError, match=message):
        RolloutCollector(env, far_actions, 4, 0, episodic_life=True)
