"""Evaluation during training: every --eval-every env steps the learner's current policy plays
--eval-episodes greedy episodes on envs of its own (never the actors'), and the best policy so far is kept
as best.pt beside the checkpoints.

It runs on a thread of its own, on a CPU copy of the weights: taking the copy holds the trainer's lock for
as long as copying the state dict takes (microseconds for the MLPs), and the episodes themselves never
block an update. It does share the process's CPU (and the GIL, between torch calls) with the trainer; a
process of its own would isolate it further, at the price of shipping weights across and starting torch
twice, which is not worth it at these model sizes. Every evaluation resets its envs with the same seed, so
successive results compare the policies on the same starting states.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from learner_service import checkpoints
from learner_service.progress import Progress
from learner_service.trainer import Trainer
from relayrl.evaluation import play_greedy
from relayrl.model import ActorCritic

log = logging.getLogger("relayrl.learner")

SEED_OFFSET = 1_000_003  # eval envs are seeded apart from the actors' (seed + actor index)
BEST = "best.pt"


@dataclass
class EvalResult:
    env_steps: int  # of the weights that played
    version: int
    version_after: int  # the trainer's version when the episodes ended: updates went on meanwhile
    mean_return: float
    std_return: float
    mean_length: float
    seconds: float
    returns: list[float]
    lengths: list[int]


class Evaluator:
    def __init__(
        self,
        trainer: Trainer,
        progress: Progress,
        make_model: Callable[[], ActorCritic],
        run_state: Callable[[], dict],
        env_id: str,
        env_kwargs: dict,
        every: int,
        episodes: int,
        seed: int,
        best_dir: str | None,
        video_every: int = 0,
        video_dir: str | None = None,
        on_result: Callable[[EvalResult], None] | None = None,
    ) -> None:
        self.trainer, self.progress, self.env_id, self.env_kwargs = trainer, progress, env_id, env_kwargs
        self.every, self.episodes, self.seed = every, episodes, seed + SEED_OFFSET
        self.model = make_model()  # the CPU copy the episodes are played with
        self.model.eval()
        self.run_state = run_state  # what best.pt records besides the model (env, network...), as checkpoints do
        self.best_path = Path(best_dir) / BEST if best_dir is not None else None
        self.video_every, self.video_dir = video_every, video_dir
        self.on_result = on_result
        self.history: list[EvalResult] = []
        self.best: float | None = self._saved_best()
        with progress.lock:  # a resumed run evaluates at the next multiple of --eval-every
            self.next_at = (progress.env_steps // every + 1) * every
        self.lock = threading.Lock()
        self.failed = False
        self._thread: threading.Thread | None = None

    def _saved_best(self) -> float | None:
        """A resumed run keeps best.pt unless it beats the result recorded in it."""
        if self.best_path is None or not self.best_path.exists():
            return None
        try:
            return float(checkpoints.load(self.best_path)["eval_mean_return"])
        except Exception as exc:  # noqa: BLE001 - an unreadable best.pt is replaced by the next result
            log.error("%s is unreadable (%s); the next evaluation replaces it", self.best_path, exc)
            return None

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._run, args=(stop,), name="evaluator", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def last(self) -> EvalResult | None:
        with self.lock:
            return self.history[-1] if self.history else None

    def _run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                with self.progress.lock:
                    due = self.progress.env_steps >= self.next_at
                if not due:
                    stop.wait(0.05)
                    continue
                self.evaluate()
        except Exception:  # noqa: BLE001 - evaluation failing must not stop training; say so loudly
            self.failed = True
            log.error("evaluation failed; training goes on without it", exc_info=True)

    def evaluate(self) -> EvalResult:
        """Copy the current weights, play them, record the result (and best.pt, and a video when due)."""
        with self.trainer.lock:  # a whole update's weights, never half of one
            state = {k: v.detach().to("cpu", copy=True) for k, v in self.trainer.model.state_dict().items()}
            version = self.trainer.version
            with self.progress.lock:
                env_steps = self.progress.env_steps
        self.next_at = (env_steps // self.every + 1) * self.every
        self.model.load_state_dict(state)
        started = time.monotonic()
        returns, lengths = play_greedy(self.model, self.env_id, self.episodes, self.seed, self.env_kwargs)
        result = EvalResult(
            env_steps=env_steps,
            version=version,
            version_after=self.trainer.version,
            mean_return=float(returns.mean()),
            std_return=float(returns.std()),
            mean_length=float(lengths.mean()),
            seconds=round(time.monotonic() - started, 3),
            returns=returns.tolist(),
            lengths=lengths.tolist(),
        )
        with self.lock:
            self.history.append(result)
            improved = self.best is None or result.mean_return > self.best
            if improved:
                self.best = result.mean_return
        if improved and self.best_path is not None:
            meta = {"version": version, "env_steps": env_steps, "eval_mean_return": result.mean_return}
            checkpoints.save_file(self.best_path, {**self.run_state(), **meta, "model": state})
        log.info(
            "evaluation at %d env steps (version %d): mean return %.2f +/- %.2f over %d greedy episodes%s",
            env_steps,
            version,
            result.mean_return,
            result.std_return,
            self.episodes,
            f", the best so far (saved to {self.best_path})" if improved and self.best_path is not None else "",
        )
        if self.video_every and self.video_dir is not None and len(self.history) % self.video_every == 0:
            from relayrl.video import record_greedy

            name = f"eval-{env_steps:012d}"
            record_greedy(self.model, self.env_id, self.video_dir, 1, self.seed, name, self.env_kwargs)
        if self.on_result is not None:
            self.on_result(result)
        return result

    def summary(self) -> dict:
        """summary.json's "eval": every result and the best mean return."""
        with self.lock:
            return {
                "every": self.every,
                "episodes": self.episodes,
                "best_mean_return": self.best,
                "results": [asdict(r) for r in self.history],
            }

    def solved(self, target: float | None) -> bool:
        last = self.last
        return target is not None and last is not None and last.mean_return >= target
