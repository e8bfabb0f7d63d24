"""Training progress as the learner sees it: counters, the last-100-episode window, stop criteria.

After --resume the counters continue from the checkpoint (env_steps, episodes, updates, samples), but
every rate (steps/s of the progress line, summary.json's steps_per_second and *_per_second) is this
process's own work over this process's own time: the counters at resume are kept as a baseline and
subtracted. Elapsed time is deliberately not carried in checkpoints: the gap between two processes
(down time, another machine) is not training time, so a carried clock would make rates wrong again.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

import numpy as np

WINDOW = 100
FRESH = 100_000  # episode returns kept between two TensorBoard writes (a second apart) at most


@dataclass
class Progress:
    env_steps: int = 0
    episodes: int = 0
    contributions: int = 0  # accepted for decoding and counted here, this process (each is applied or dropped)
    updates: int = 0
    samples: int = 0
    version: int = 0
    dropped: int = 0  # contributions dropped: stale (relayrl_dropped_stale_total) or duplicate
    baseline: dict[str, int] = field(default_factory=dict)  # the counters this process resumed from
    returns: collections.deque = field(default_factory=lambda: collections.deque(maxlen=WINDOW))
    lengths: collections.deque = field(default_factory=lambda: collections.deque(maxlen=WINDOW))
    # the first WINDOW episodes' returns (this process): where the run started, counted in episodes, so it
    # does not depend on when the first progress line happened to be printed
    first_returns: list[float] = field(default_factory=list)
    # every episode's return since the last take_new_returns() (TensorBoard's histogram), bounded
    new_returns: collections.deque = field(default_factory=lambda: collections.deque(maxlen=FRESH))
    lags: list[int] = field(default_factory=list)  # since the last progress line
    lag_total: int = 0
    lag_count: int = 0
    update_seconds: float = 0.0  # this process's updates, summed (record_update)
    first_data: float | None = None  # when the first contribution arrived (monotonic)
    curve: list[tuple[float, int, float]] = field(default_factory=list)  # (seconds, env_steps, mean_return)
    eval_return: float | None = None  # the latest evaluation's mean return (--eval-every)
    # data-parallel learners (group.py): the other ranks' env steps, added to env_steps at each update, so that
    # --max-env-steps, the learning-rate schedule and the summary count the whole group's
    peer_env_steps: int = 0
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_episodes(self, env_steps: int, returns: np.ndarray, lengths: np.ndarray | None = None) -> None:
        with self.lock:
            if self.first_data is None:
                self.first_data = time.monotonic()
            self.env_steps += env_steps
            self.contributions += 1
            self.episodes += len(returns)
            values = returns.tolist()
            self.first_returns.extend(values[: WINDOW - len(self.first_returns)])
            self.returns.extend(values)
            self.new_returns.extend(values)
            if lengths is not None:
                self.lengths.extend(lengths.tolist())

    def own_env_steps(self) -> int:
        """The env steps this rank's actors reported (all of env_steps for a learner alone)."""
        with self.lock:
            return self.env_steps - self.peer_env_steps

    def record_peer_env_steps(self, n: int) -> None:
        with self.lock:
            self.env_steps += n
            self.peer_env_steps += n

    def take_new_returns(self) -> list[float]:
        """The returns of the episodes reported since the last call."""
        with self.lock:
            out = list(self.new_returns)
            self.new_returns.clear()
            return out

    def mean_length(self) -> float | None:
        with self.lock:
            return float(np.mean(self.lengths)) if self.lengths else None

    def resume(self, counters: dict[str, int]) -> None:
        """Continue the counters of a checkpoint; rates count only what happens after this."""
        with self.lock:
            for key in ("env_steps", "episodes", "updates", "samples"):
                setattr(self, key, int(counters.get(key, 0)))
            self.baseline = {key: getattr(self, key) for key in ("env_steps", "episodes", "updates", "samples")}

    def own(self, key: str) -> int:
        """This process's share of counter ``key`` (all of it unless resumed). Call with the lock held."""
        return getattr(self, key) - self.baseline.get(key, 0)

    def record_drop(self, n: int = 1) -> None:
        with self.lock:
            self.dropped += n

    def record_update(self, version: int, samples: int, lags: list[int], seconds: float = 0.0) -> None:
        """An applied batch; ``seconds`` from taking it to publishing the next version (device work included)."""
        with self.lock:
            self.update_seconds += seconds
            self.updates += 1
            self.samples += samples
            self.version = version
            self.lags.extend(lags)
            self.lag_total += sum(lags)
            self.lag_count += len(lags)

    def mean_return(self) -> float | None:
        with self.lock:
            return float(np.mean(self.returns)) if self.returns else None

    def solved(self, target: float | None) -> bool:
        with self.lock:
            return target is not None and len(self.returns) == WINDOW and float(np.mean(self.returns)) >= target

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rates(self) -> dict[str, float]:
        """This process's throughput since its first contribution arrived (start-up excluded; after a
        resume, the resumed counters excluded) and the mean policy lag."""
        with self.lock:
            seconds = time.monotonic() - self.first_data if self.first_data is not None else 0.0
            per = (lambda n: round(n / seconds, 1)) if seconds > 0 else (lambda n: 0.0)
            own_updates = self.own("updates")
            return {
                "training_seconds": round(seconds, 3),
                "steady_steps_per_second": per(self.own("env_steps")),
                "updates_per_second": per(self.own("updates")),
                "samples_per_second": per(self.own("samples")),
                "mean_policy_lag": round(self.lag_total / self.lag_count, 3) if self.lag_count else 0.0,
                "mean_update_seconds": round(self.update_seconds / own_updates, 6) if own_updates else 0.0,
            }


class ProgressPrinter:
    """One line per interval: env steps, steps/s, mean return of the last 100 episodes, version, lag, and
    the contributions dropped as stale so far."""

    def __init__(self, progress: Progress) -> None:
        self._p = progress
        with progress.lock:  # after a resume the first interval's rate starts from the resumed counters
            self._last = (time.monotonic(), progress.env_steps, progress.updates)

    def line(self) -> str:
        p = self._p
        now = time.monotonic()
        with p.lock:
            steps, updates, version = p.env_steps, p.updates, p.version
            lags, p.lags = p.lags, []
            mean = float(np.mean(p.returns)) if p.returns else float("nan")
            episodes, dropped, eval_return = p.episodes, p.dropped, p.eval_return
            p.curve.append((now - p.started, steps, mean))
        then, last_steps, last_updates = self._last
        dt = max(now - then, 1e-9)
        self._last = (now, steps, updates)
        lag = float(np.mean(lags)) if lags else 0.0
        return (
            f"[{now - p.started:7.1f}s] env_steps={steps} steps/s={(steps - last_steps) / dt:,.0f} "
            f"return100={mean:.1f} episodes={episodes} version={version} "
            f"updates/s={(updates - last_updates) / dt:.1f} lag={lag:.2f} dropped={dropped}"
            + (f" eval={eval_return:.1f}" if eval_return is not None else "")
        )
