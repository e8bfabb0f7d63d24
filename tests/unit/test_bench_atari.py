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
