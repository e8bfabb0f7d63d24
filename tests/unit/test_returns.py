"""n-step returns and GAE against hand-computed cases (gamma = 0.5 keeps the arithmetic exact)."""

import numpy as np
import pytest

from relayrl.returns import gae_advantages, n_step_returns
from tests.references import gae_reference, n_step_return_reference

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


def test_gae_hand_computed_with_an_episode_end_in_the_middle():
    """gamma = lam = 0.5, so the trace decays by 0.25; step 1 is truncated, terminated, or neither."""
    rewards, values, next_values = col(1, 1, 1), col(1, 2, 0.5), col(2, 4, 2)
    no, mid = flags(0, 0, 0), flags(0, 1, 0)
    # delta0 = 1 + .5*2 - 1 = 1; delta1 = 1 + .5*4 - 2 = 1 (bootstraps from the final obs); delta2 = 1 + 1 - .5 = 1.5
    # truncated: A2 = 1.5, A1 = 1 (the trace stops at the end), A0 = 1 + .25*1 = 1.25
    np.testing.assert_allclose(gae_advantages(rewards, values, next_values, no, mid, G, 0.5), col(1.25, 1, 1.5))
    # terminated: delta1 = 1 - 2 = -1 (no bootstrap), A0 = 1 + .25*(-1) = .75
    np.testing.assert_allclose(gae_advantages(rewards, values, next_values, mid, mid, G, 0.5), col(0.75, -1, 1.5))
    # no end: A1 = 1 + .25*1.5 = 1.375, A0 = 1 + .25*1.375 = 1.34375
    np.testing.assert_allclose(gae_advantages(rewards, values, next_values, no, no, G, 0.5), col(1.34375, 1.375, 1.5))


def random_episodes(seed, T=9, N=6):
    """Random rewards and values with terminations and truncations strictly inside the rollout."""
    rng = np.random.default_rng(seed)
    rewards, values = rng.normal(size=(T, N)), rng.normal(size=(T, N))
    terminated = np.zeros((T, N), bool)
    truncated = np.zeros((T, N), bool)
    terminated[1:-1] = rng.random((T - 2, N)) < 0.2
    truncated[1:-1] = (rng.random((T - 2, N)) < 0.2) & ~terminated[1:-1]
    terminated[3, 0], truncated[5, 1] = True, True  # at least one of each, mid-rollout
    truncated[3, 0], terminated[5, 1] = False, False
    # after an end, the next observation is the episode's final one: its value is not values[t + 1]
    next_values = np.concatenate([values[1:], rng.normal(size=(1, N))])
    next_values = np.where(terminated | truncated, rng.normal(size=(T, N)), next_values)
    return rewards, values, next_values, terminated, truncated


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95])
@pytest.mark.parametrize("seed", range(3))
def test_gae_matches_the_papers_sum(lam, seed):
    rewards, values, next_values, terminated, truncated = random_episodes(seed)
    adv = gae_advantages(rewards, values, next_values, terminated, terminated | truncated, 0.9, lam)
    expected = gae_reference(rewards, values, next_values, terminated, truncated, 0.9, lam)
    np.testing.assert_allclose(adv, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("lam", [0.0, 0.95, 1.0])
@pytest.mark.parametrize("seed", range(2))
def test_gae_on_torch_tensors_matches_the_papers_sum(lam, seed):
    """The learner runs GAE where its batch is (a GPU's memory): the same function on tensors, same result."""
    torch = pytest.importorskip("torch")
    rewards, values, next_values, terminated, truncated = random_episodes(seed)
    tensors = [torch.as_tensor(x) for x in (rewards, values, next_values, terminated, terminated | truncated)]
    adv = gae_advantages(*tensors, 0.9, lam)
    assert isinstance(adv, torch.Tensor) and adv.dtype == torch.float64 and adv.shape == rewards.shape
    expected = gae_reference(rewards, values, next_values, terminated, truncated, 0.9, lam)
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_n_step_returns_match_the_sum_and_gae_with_lambda_one(seed):
    rewards, values, next_values, terminated, truncated = random_episodes(seed)
    ended = terminated | truncated
    ret = n_step_returns(rewards, next_values, terminated, ended, 0.9)
    np.testing.assert_allclose(
        ret, n_step_return_reference(rewards, next_values, terminated, truncated, 0.9), rtol=1e-10, atol=1e-10
    )
    adv = gae_advantages(rewards, values, next_values, terminated, ended, 0.9, 1.0)
    np.testing.assert_allclose(adv, ret - values, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("lam", [1.0, 0.9])
def test_a_one_step_rollout_gives_the_one_step_td_error(lam):
    """n_steps 1 (a valid setting): A_0 = r_0 + gamma (1 - terminated_0) V(s_1) - V(s_0), whatever lambda."""
    rewards, values, next_values = np.array([[1.0, 2.0]]), np.array([[0.5, 0.25]]), np.array([[4.0, 8.0]])
    terminated = np.array([[False, True]])
    advantages = gae_advantages(rewards, values, next_values, terminated, terminated, 0.9, lam)
    np.testing.assert_allclose(advantages, [[1.0 + 0.9 * 4.0 - 0.5, 2.0 - 0.25]])
