"""The Atari benchmark's per-part CPU costs are measured on the real pipeline parts and tabulated with the bound
they imply (never asserting a speed)."""

import math

import pytest

pytest.importorskip("ale_py")

from relayrl_cli.bench import atari  # noqa: E402


def test_costs_time_every_part_and_the_table_states_the_bound():
    costs = atari.costs("ALE/Breakout-v5", reps=1)
    ms = costs["ms_per_env_step"]
    assert set(ms) == {"emulation", "inference_1", "inference_2", "learner_1", "learner_2"}
    assert all(math.isfinite(v) and v > 0 for v in ms.values())
    text = "\n".join(atari.costs_lines(costs))
    bound = costs["cores"] * 1e3 / (ms["emulation"] + ms["inference_1"] + ms["learner_1"])
    assert f"{ms['learner_2']:.2f}" in text and f"at most {bound:,.0f} env steps/s" in text


def test_the_quarter_means_of_each_curve_are_in_the_learning_report():
    steps = 400
    # RelayRL: 100 for the first half, 300 after; SB3: no episodes yet (None) at first, then 200 throughout
    ours = [[0.0, 0, 100.0], [1.0, 200, 300.0], [2.0, 400, 300.0]]
    theirs = [[0.0, 0, None], [0.5, 50, 200.0], [2.0, 400, 200.0]]
    assert atari.quarter_means(ours, steps) == [100.0, 100.0, 300.0, 300.0]
    assert atari.quarter_means(theirs, steps) == [200.0, 200.0, 200.0, 200.0]
    learn = {"env_steps": steps, "relayrl": {"curve": ours}, "sb3": {"curve": theirs}}
    assert atari.quarters_sentence(learn) == ("RelayRL against SB3, 0–100: 100.0 against 200.0; 100–200: 100.0 "
                                              "against 200.0; 200–300: 300.0 against 200.0; 300–400: 300.0 against "
                                              "200.0")
