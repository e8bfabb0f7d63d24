"""After --resume the counters continue, but every rate is this process's own steps over its own time."""

from __future__ import annotations

import re
import time

import numpy as np

from learner_service.progress import Progress, ProgressPrinter

RESUMED = {"env_steps": 10**9, "episodes": 10**6, "updates": 10**5, "samples": 10**9}


def work(progress: Progress, seconds: float, steps: int = 1000) -> None:
    """Report ``steps`` env steps and one update, then let ``seconds`` of wall time pass."""
    progress.record_episodes(steps, np.array([1.0]))
    progress.record_update(progress.version + 1, steps, [0])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # real wall time for the rates, measured, not slept through
        pass


def test_rates_after_a_resume_count_only_this_processs_steps():
    fresh, resumed = Progress(), Progress()
    resumed.resume(RESUMED)
    assert (resumed.env_steps, resumed.episodes, resumed.updates) == (10**9, 10**6, 10**5)
    for p in (fresh, resumed):
        work(p, 0.05)
    for p in (fresh, resumed):
        rates = p.rates()
        assert 0 < rates["steady_steps_per_second"] <= 1000 / 0.05
        # rate x seconds gives back this process's own 1000 steps (to the rounding of both)
        assert abs(rates["steady_steps_per_second"] * rates["training_seconds"] - 1000) <= 10
        assert 0 < rates["updates_per_second"] <= 1 / 0.05
    assert resumed.env_steps == 10**9 + 1000 and resumed.updates == 10**5 + 1


def test_the_first_progress_line_after_a_resume_counts_from_the_resumed_counters():
    progress = Progress()
    progress.resume(RESUMED)
    printer = ProgressPrinter(progress)
    work(progress, 0.05)
    line = printer.line()
    steps_per_second = float(re.search(r"steps/s=([\d,]+)", line).group(1).replace(",", ""))
    updates_per_second = float(re.search(r"updates/s=([\d.]+)", line).group(1))
    assert 0 < steps_per_second <= 1000 / 0.05, line
    assert updates_per_second <= 1 / 0.05, line
    assert f"env_steps={10**9 + 1000}" in line


def test_the_start_of_the_run_is_the_first_100_episodes_whenever_lines_are_printed():
    p = Progress()
    p.record_episodes(10, np.full(60, 5.0))
    p.record_episodes(10, np.concatenate([np.full(40, 7.0), np.full(30, 900.0)]))  # 30 beyond the first 100
    p.record_episodes(10, np.full(50, 1000.0))
    assert p.first_returns == [5.0] * 60 + [7.0] * 40
    assert list(p.returns)[-1] == 1000.0  # the window moved on; the start stays
