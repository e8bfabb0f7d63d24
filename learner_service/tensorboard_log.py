"""TensorBoard event files in the run folder, with the tag names Stable-Baselines3 users know
(rollout/ep_rew_mean, train/value_loss, time/fps, eval/mean_reward...), against env steps.

Written from the learner's main thread at each progress line (--log-every) and by the evaluation thread,
never from the trainer thread: the trainer only swaps a dict of its last update's diagnostics
(Trainer.last_update), and tensorboardX queues events to its own writer thread, so logging costs the
update loop nothing measurable. After --resume the curves continue from the checkpoint's env steps: the
writer opens a new event file in the same folder with ``purge_step`` set to them, so points the old
process wrote after its last checkpoint are hidden instead of doubling back on the x-axis.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from learner_service.progress import Progress

# Trainer.last_update's keys -> tags (SB3 logs entropy_loss = -entropy, so does this)
TRAIN_TAGS = {
    "policy_loss": "train/policy_loss",
    "value_loss": "train/value_loss",
    "explained_variance": "train/explained_variance",
    "grad_norm": "train/grad_norm",
    "learning_rate": "train/learning_rate",
}


class TensorBoardLog:
    def __init__(
        self,
        log_dir: str | os.PathLike,
        progress: Progress,
        last_update: Callable[[], Mapping[str, float]],
        purge_step: int | None = None,
    ) -> None:
        from tensorboardX import SummaryWriter  # here: a learner without a run folder never needs it

        self.progress, self.last_update = progress, last_update
        # A suffix that sorts in time: two processes started in the same second must not share a file name
        suffix = f".{time.time_ns()}"
        self.writer = SummaryWriter(logdir=str(log_dir), purge_step=purge_step, flush_secs=5, filename_suffix=suffix)
        self.lock = threading.Lock()  # the main thread and the evaluation thread both write
        with progress.lock:
            counters = (progress.env_steps, progress.updates, progress.lag_total, progress.lag_count)
        self._last = (time.monotonic(), *counters)

    def write(self) -> int:
        """One point of every training curve, at the current env steps; returns that step."""
        p = self.progress
        now = time.monotonic()
        with p.lock:
            steps, updates, lag_total, lag_count = p.env_steps, p.updates, p.lag_total, p.lag_count
            mean_return = float(np.mean(p.returns)) if p.returns else None
            mean_length = float(np.mean(p.lengths)) if p.lengths else None
        new_returns = p.take_new_returns()
        then, last_steps, last_updates, last_lag_total, last_lag_count = self._last
        self._last = (now, steps, updates, lag_total, lag_count)
        dt = max(now - then, 1e-9)
        scalars = {
            "rollout/ep_rew_mean": mean_return,
            "rollout/ep_len_mean": mean_length,
            "time/fps": (steps - last_steps) / dt,
            "time/updates_per_second": (updates - last_updates) / dt,
            "train/n_updates": updates,
            "train/policy_lag": (lag_total - last_lag_total) / (lag_count - last_lag_count)
            if lag_count > last_lag_count
            else None,
        }
        diagnostics = dict(self.last_update())
        for key, tag in TRAIN_TAGS.items():
            scalars[tag] = diagnostics.get(key)
        if "entropy" in diagnostics:
            scalars["train/entropy_loss"] = -diagnostics["entropy"]
        with self.lock:
            self._scalars(scalars, steps)
            if new_returns:
                self.writer.add_histogram("rollout/ep_rew", np.asarray(new_returns), steps)
        return steps

    def write_eval(self, env_steps: int, returns: Sequence[float], lengths: Sequence[int]) -> None:
        """One evaluation's result (SB3's EvalCallback tags), at the env steps of the weights it played."""
        with self.lock:
            self._scalars(
                {
                    "eval/mean_reward": float(np.mean(returns)),
                    "eval/std_reward": float(np.std(returns)),
                    "eval/mean_ep_length": float(np.mean(lengths)),
                },
                env_steps,
            )

    def _scalars(self, values: Mapping[str, float | None], step: int) -> None:
        for tag, value in values.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        with self.lock:
            self.writer.close()  # flushes what is queued
