"""How long A2C's barrier keeps actors idle (summary.json's "a2c_barrier").

An actor that has delivered its rollout of round v waits for version v+1 before collecting again (A2C is
on-policy). Its wait has two parts, measured here from the learner's side for every actor of every round:
- ``waiting_for_round``: from its rollout's arrival until the round closes (the slowest actor delivers);
- ``waiting_for_update``: from the close until v+1 is published (the update, and serialising the weights).
Each is summed over actors and divided by the actors' time in rounds (the round's period times its actors),
so the shares say what fraction of the fleet's time the barrier costs. Not counted: the weights' trip to the
actor and its loading them (a lower bound, then), and time before the first round.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class BarrierClock:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._arrivals: list[float] = []
        self._closed_at: float | None = None
        self._round_started = now()
        self._counting = False  # from the first round on (start-up is not the barrier's)
        self.rounds = 0
        self.actor_seconds = self.round_wait = self.update_wait = self.update_span = 0.0

    def arrived(self) -> None:
        """One actor's rollout of the open round was accepted."""
        with self._lock:
            self._arrivals.append(self._now())

    def closed(self) -> None:
        """The round closed: the trainer took its batch."""
        with self._lock:
            self._closed_at = self._now()

    def published(self) -> None:
        """The next version is out: the round's actors may collect again."""
        now = self._now()
        with self._lock:
            if self._closed_at is not None and self._arrivals and self._counting:
                n = len(self._arrivals)
                self.rounds += 1
                self.actor_seconds += (now - self._round_started) * n
                self.round_wait += sum(self._closed_at - t for t in self._arrivals)
                self.update_wait += (now - self._closed_at) * n
                self.update_span += now - self._closed_at
            self._counting = self._counting or self._closed_at is not None
            self._arrivals, self._closed_at, self._round_started = [], None, now

    def summary(self) -> dict[str, float]:
        with self._lock:
            def share(seconds: float) -> float:
                return round(seconds / self.actor_seconds, 4) if self.actor_seconds > 0 else 0.0

            return {"rounds": self.rounds, "idle_share": share(self.round_wait + self.update_wait),
                    "waiting_for_round_share": share(self.round_wait),
                    "waiting_for_update_share": share(self.update_wait),
                    "mean_close_to_publish_seconds": round(self.update_span / self.rounds, 6) if self.rounds else 0.0}
