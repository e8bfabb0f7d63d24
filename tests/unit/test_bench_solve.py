"""The held solve of relayrl bench (relayrl_cli/bench/solve.py): first crossing that then stays up for 95% of
an equally long span, against hand-built curves and a brute-force reference."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayrl_cli.bench.solve import first_crossing, fraction_at_or_above, held_solve, mean_over, solve_points


def test_a_crossing_that_collapses_is_not_held_the_later_one_that_stays_is():
    xs = [0, 100, 110, 120, 200, 300, 400, 500, 600]
    values = [10, 480, 9, 9, 490, 500, 500, 500, 500]
    assert first_crossing(xs, values, 475) == 1
    # at 100 it must stay up over [100, 200): it is up only over [100, 110)
    # at 200 it must stay up over [200, 400): it is up all the way
    assert held_solve(xs, values, 475) == 4


def test_the_first_crossing_is_the_held_solve_when_it_stays():
    xs, values = [0, 50, 100, 150, 200], [0, 500, 500, 500, 500]
    assert first_crossing(xs, values, 475) == held_solve(xs, values, 475) == 1


def test_the_hold_fraction_is_measured_in_x_with_each_value_held_until_the_next_sample():
    # crossing at 100; span [100, 200); dips below over [150, 150 + d)
    def curve(dip):
        return [0, 100, 150, 150 + dip, 200], [0, 500, 400, 500, 500]

    assert held_solve(*curve(5), 475) == 1  # up 95 of 100
    assert held_solve(*curve(6), 475) is None  # up 94 of 100, and 150 + 6 never gets a span within the curve
    assert held_solve(*curve(6), 475, hold=0.9) == 1
    # a dip of the same length sampled many times is the same dip: counted by length, not by samples
    xs = [0, 100] + [150 + i * 0.5 for i in range(12)] + [156, 200]
    values = [0, 500] + [400] * 12 + [500, 500]
    assert held_solve(xs, values, 475) is None  # below over [150, 156): 94%


def test_a_curve_that_ends_before_the_span_does_not_decide():
    xs, values = [0, 100, 150, 199], [0, 500, 500, 500]
    assert first_crossing(xs, values, 475) == 1
    assert held_solve(xs, values, 475) is None
    assert held_solve([*xs, 200], [*values, 500], 475) == 1


def test_nan_is_below_the_target_and_never_a_crossing():
    nan = math.nan
    assert first_crossing([0, 1, 2], [nan, nan, nan], -1e9) is None
    xs, values = [0, 100, 150, 200], [nan, 500, nan, 500]
    assert held_solve(xs, values, 475) is None  # nan over [150, 200): half the span


def test_the_target_is_reached_at_equality():
    assert first_crossing([0, 10], [0, 475.0], 475) == 1
    assert held_solve([0, 10, 20], [0, 475.0, 475.0], 475) == 1


def test_bad_curves_are_refused():
    with pytest.raises(ValueError, match="must not decrease"):
        held_solve([0, 10, 5], [0, 1, 1], 1)
    with pytest.raises(ValueError, match="2 x values but 3 values"):
        held_solve([0, 1], [0, 1, 2], 1)
    with pytest.raises(ValueError, match="hold"):
        held_solve([0, 1], [0, 1], 1, hold=0.0)


def test_solve_points_reads_seconds_and_env_steps_of_the_rows_judged_on_env_steps():
    # [seconds, env_steps, return100]: seconds grow unevenly (start-up), the judgement uses env steps
    curve = [[3.0, 0, 20.0], [4.0, 1000, 480.0], [4.1, 1100, 10.0], [9.0, 2000, 490.0], [20.0, 5000, 500.0]]
    points = solve_points(curve, 475)
    assert points["first_crossing"] == {"wall_seconds": 4.0, "env_steps": 1000}
    assert points["held"] == {"wall_seconds": 9.0, "env_steps": 2000}
    assert solve_points(curve[:1], 475) == {"target": 475, "hold": 0.95, "first_crossing": None, "held": None}


def reference(xs, values, target, hold=0.95):
    """Brute force on integer x: count the unit intervals of [x0, 2 x0) whose value is at or above."""
    def value_at(u):
        return values[max(j for j, x in enumerate(xs) if x <= u)]

    for i, x0 in enumerate(xs):
        if values[i] < target:
            continue
        if xs[-1] < 2 * x0:
            return None
        if x0 == 0:
            continue
        up = sum(value_at(u) >= target for u in range(x0, 2 * x0))
        if up >= hold * x0:
            return i
    return None


curves = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1)), min_size=1, max_size=25).map(
    lambda rows: ([sum(d for d, _ in rows[: i + 1]) for i in range(len(rows))], [v for _, v in rows]))


@settings(max_examples=300, deadline=None)
@given(curves, st.sampled_from([0.5, 0.8, 0.95, 1.0]))
def test_matches_a_brute_force_reference(curve, hold):
    xs, values = curve
    assert held_solve(xs, values, 1, hold) == reference(xs, values, 1, hold)


@settings(max_examples=300, deadline=None)
@given(curves)
def test_a_held_solve_found_on_a_prefix_is_the_answer_on_the_whole_curve(curve):
    # what lets SB3's run stop as soon as its curve has a held solve
    xs, values = curve
    whole = held_solve(xs, values, 1)
    for n in range(1, len(xs) + 1):
        found = held_solve(xs[:n], values[:n], 1)
        assert found is None or found == whole


def test_fraction_at_or_above_counts_each_value_until_the_next_sample_within_the_span():
    xs, values = [0, 10, 20, 30, 40], [500, 400, 500, 480, 500]
    # [5, 35]: 5 above (5-10), 10 below, 10 above, 5 above (30-35) -> 20 of 30
    assert fraction_at_or_above(xs, values, 475, 5, 35) == pytest.approx(20 / 30)
    assert fraction_at_or_above(xs, values, 490, 5, 35) == pytest.approx(15 / 30)
    assert fraction_at_or_above(xs, values, 475, 20, 40) == 1.0
    assert fraction_at_or_above(xs, [math.nan, 500, 500, 500, 500], 475, 0, 20) == 0.5


def test_fraction_at_or_above_refuses_an_empty_span_or_a_curve_that_ends_early():
    with pytest.raises(ValueError):
        fraction_at_or_above([0, 10], [1, 1], 1, 5, 5)
    with pytest.raises(ValueError):
        fraction_at_or_above([0, 10], [1, 1], 1, 5, 11)


def test_mean_over_weights_each_value_by_the_span_it_lasts_and_leaves_out_missing_values():
    xs, values = [0, 10, 20, 30], [100, 200, 400, 800]
    # [5, 25]: 100 over 5, 200 over 10, 400 over 5 -> (500 + 2000 + 2000) / 20
    assert mean_over(xs, values, 5, 25) == pytest.approx(225)
    # the last value lasts until the span's end
    assert mean_over(xs, values, 25, 40) == pytest.approx((400 * 5 + 800 * 10) / 15)
    # NaN (no episodes yet) and the span before the first sample count for nothing
    assert mean_over([10, 20], [math.nan, 300], 0, 30) == 300
    assert math.isnan(mean_over([0, 10], [math.nan, math.nan], 0, 10))
    with pytest.raises(ValueError):
        mean_over(xs, values, 5, 5)
