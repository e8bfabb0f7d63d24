"""n-step returns and GAE against hand-computed cases (gamma = 0.5 keeps the arithmetic exact)."""

import numpy as np
import pytest

from relayrl.returns import gae_advantages, n_step_returns

G = 0.5


def col(*xs):
    """A [T, 1] column: one environment."""
    return np.array(xs, dtype=np.float64).reshape(-1, 1)


def flags(*xs):
    return np.array(xs, dtype=bool).reshape(-1, 1)


def test_no_episode_end_bootstraps_from_the_last_value():
    rewards, next_values = col(1, 2, 3), col(10, 20, 8)
    no = flags(0, 0, 0)
    # R2 = 3 + .5*8 = 7; R1 = 2 + .5*7 = 5.5; R0 = 1 + .5*5.5 = 3.75
    np.testing.assert_allclose(n_step_returns(rewards, next_values, no, no, G), col(3.75, 5.5, 7))


def test_termination_cuts_the_bootstrap():
    rewards, next_values = col(1, 2, 3), col(10, 20, 8)
    term = flags(0, 1, 0)
    # R2 = 3 + .5*8 = 7 (new episode); R1 = 2 (terminal: nothing after it); R0 = 1 + .5*2 = 2
    np.testing.assert_allclose(n_step_returns(rewards, next_values, term, term, G), col(2, 2, 7))


def test_truncation_bootstraps_from_the_final_observation():
    rewards, next_values = col(1, 2, 3), col(10, 20, 8)
    trunc = flags(0, 1, 0)
    no = flags(0, 0, 0)
    # R1 = 2 + .5*V(final obs)=2 + .5*20 = 12, not 2 + .5*R2; R0 = 1 + .5*12 = 7
    np.testing.assert_allclose(n_step_returns(rewards, next_values, no, trunc, G), col(7, 12, 7))


def test_terminal_last_step_ignores_bootstrap_value():
    rewards, next_values = col(1, 1), col(4, 100)
    term = flags(0, 1)
    np.testing.assert_allclose(n_step_returns(rewards, next_values, term, term, G), col(1.5, 1))


def test_environments_are_independent_columns():
    rewards = np.array([[1, 1], [1, 1]], dtype=np.float64)
    next_values = np.array([[0, 0], [2, 2]], dtype=np.float64)
    term = np.array([[False, True], [False, False]])
    out = n_step_returns(rewards, next_values, term, term, G)
    # env 0: R1 = 1 + 1 = 2, R0 = 1 + 1 = 2; env 1: R0 = 1 (terminal), R1 = 2
    np.testing.assert_allclose(out, [[2, 1], [2, 2]])


@pytest.mark.parametrize("seed", range(5))
def test_gae_with_lambda_one_is_the_n_step_advantage(seed):
    rng = np.random.default_rng(seed)
    T, N = 7, 5
    rewards, values = rng.normal(size=(T, N)), rng.normal(size=(T, N))
    next_values = np.concatenate([values[1:], rng.normal(size=(1, N))])
    terminated = rng.random((T, N)) < 0.15
    truncated = (rng.random((T, N)) < 0.15) & ~terminated
    # where an episode ended, the next observation is its final one: give it its own value
    next_values = np.where(truncated, rng.normal(size=(T, N)), next_values)
    ended = terminated | truncated
    adv = gae_advantages(rewards, values, next_values, terminated, ended, 0.9, 1.0)
    ret = n_step_returns(rewards, next_values, terminated, ended, 0.9)
    np.testing.assert_allclose(adv, ret - values, rtol=1e-10, atol=1e-10)


def test_gae_with_lambda_zero_is_the_td_error():
    rewards, values, next_values = col(1, 2), col(0.5, 1), col(1, 4)
    term = flags(0, 1)
    adv = gae_advantages(rewards, values, next_values, term, term, G, 0.0)
    # delta0 = 1 + .5*1 - .5 = 1; delta1 = 2 + 0 - 1 = 1 (terminal)
    np.testing.assert_allclose(adv, col(1, 1))


def test_gae_hand_computed_lambda_half():
    rewards, values, next_values = col(1, 1), col(0, 0), col(0, 2)
    no = flags(0, 0)
    adv = gae_advantages(rewards, values, next_values, no, no, G, 0.5)
    # delta1 = 1 + .5*2 = 2; delta0 = 1; A1 = 2; A0 = 1 + .5*.5*2 = 1.5
    np.testing.assert_allclose(adv, col(1.5, 2))
