"""Repetitions summarised as median, min and max."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def summary(values: Sequence[float]) -> dict[str, float | list[float]]:
    values = [float(v) for v in values]
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def paired_ratio(ours: Sequence[float], theirs: Sequence[float]) -> dict[str, float | list[float]]:
    """Ratios of repetition i against repetition i (same seed), summarised."""
    return summary([a / b for a, b in zip(ours, theirs, strict=True) if b > 0])
