"""When a learning curve solves a task: the first crossing of the target, and the first crossing that holds.

A curve is a sequence of samples (x, value): x is the training progress (the benchmark uses env steps, for
RelayRL and SB3 alike) and value the mean return of the last 100 episodes. A value holds from its sample up
to the next sample (a step function); a NaN value (no episodes yet) counts as below the target.

The *held* solve is the first sample at x0 whose value reaches the target and after which the curve stays
at or above the target for at least ``hold`` (0.95) of the equally long span [x0, 2 x0]. It is only decided
once the curve reaches 2 x0; a shorter curve has no held solve (yet). Both functions return an index into
the curve, so callers read every column of that row (seconds, env steps).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

HOLD = 0.95


def _reached(value: float, target: float) -> bool:
    return not math.isnan(value) and value >= target


def first_crossing(xs: Sequence[float], values: Sequence[float], target: float) -> int | None:
    """Index of the first sample at or above ``target``, or None."""
    return next((i for i, v in enumerate(values) if _reached(v, target)), None)


def held_solve(xs: Sequence[float], values: Sequence[float], target: float, hold: float = HOLD) -> int | None:
    """Index of the first sample at x0 that reaches ``target`` and after which the curve is at or above it
    for at least ``hold`` of [x0, 2 x0] (measured in x, each value held until the next sample); None if no
    sample qualifies within the curve. Because a candidate's span is decided as soon as the curve reaches
    2 x0, the answer on a prefix of a curve, when not None, is the answer on the whole curve."""
    if len(xs) != len(values):
        raise ValueError(f"{len(xs)} x values but {len(values)} values")
    if any(b < a for a, b in zip(xs, xs[1:], strict=False)):
        raise ValueError("x values must not decrease")
    if not 0.0 < hold <= 1.0:
        raise ValueError(f"hold must be in (0, 1], got {hold}")
    # covered[j]: length of [xs[0], xs[j]] spent at or above the target
    covered = [0.0]
    for j in range(len(xs) - 1):
        covered.append(covered[-1] + (xs[j + 1] - xs[j] if _reached(values[j], target) else 0.0))
    for i, (x0, v0) in enumerate(zip(xs, values, strict=True)):
        if not _reached(v0, target):
            continue
        end = 2 * x0
        if xs[-1] < end:
            return None  # this and every later candidate's span runs past the curve: undecided
        if end <= x0:  # x0 <= 0: an empty span, nothing to hold
            continue
        m = bisect.bisect_right(xs, end) - 1  # the last sample at or before the span's end
        above = covered[m] - covered[i]
        if m < len(xs) - 1 and _reached(values[m], target):
            above += end - xs[m]
        if above >= hold * (end - x0):
            return i
    return None


def fraction_at_or_above(xs: Sequence[float], values: Sequence[float], target: float, start: float,
                         end: float) -> float:
    """The fraction of [start, end] over which the step curve (each value held until the next sample) is at
    or above ``target``; the curve must reach ``end``. Time before the first sample counts as below."""
    if not end > start:
        raise ValueError(f"empty span [{start}, {end}]")
    if not xs or xs[-1] < end:
        raise ValueError(f"the curve ends before {end}")
    above = sum(length for j, length in _pieces(xs, start, end) if _reached(values[j], target))
    return above / (end - start)


def _pieces(xs: Sequence[float], start: float, end: float):
    """(j, length) for each sample whose value lasts over part of [start, end]: until the next sample, the last
    until ``end``; the span before the first sample belongs to none."""
    for j, x in enumerate(xs):
        lo, hi = max(x, start), min(xs[j + 1] if j + 1 < len(xs) else end, end)
        if hi > lo:
            yield j, hi - lo


def mean_over(xs: Sequence[float], values: Sequence[float], start: float, end: float) -> float:
    """The mean of the step curve (each value held until the next sample, the last until ``end``) over
    [start, end], weighted by x; NaN values (no episodes yet) and the span before the first sample are left
    out. NaN if nothing is left."""
    if not end > start:
        raise ValueError(f"empty span [{start}, {end}]")
    kept = [(values[j], length) for j, length in _pieces(xs, start, end) if not math.isnan(values[j])]
    weight = sum(length for _, length in kept)
    return sum(value * length for value, length in kept) / weight if weight else math.nan


def solve_points(curve: Sequence[Sequence[float]], target: float, hold: float = HOLD) -> dict:
    """The first crossing and the held solve of a curve of [wall_seconds, env_steps, return100] rows, judged
    on env steps (see benchmarks/README.md): each as {"wall_seconds", "env_steps"} of its row, or None."""
    steps = [float(row[1]) for row in curve]
    values = [float(row[2]) for row in curve]

    def point(i: int | None) -> dict | None:
        return None if i is None else {"wall_seconds": float(curve[i][0]), "env_steps": int(curve[i][1])}

    return {"target": target, "hold": hold, "first_crossing": point(first_crossing(steps, values, target)),
            "held": point(held_solve(steps, values, target, hold))}
