"""How starved the learner is for data: the share of the trainer's recent time spent waiting for a batch
(relayrl_learner_starvation_ratio). Near 1 the learner idles and more actors would be used; near 0 it is
saturated and more actors only add policy lag. The actor autoscaler (deploy/k8s/components/actor-autoscaling)
scales on it, because actors keep their CPU busy whether or not the learner can use what they send."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from prometheus_client import Gauge

WINDOW_SECONDS = 10.0  # short enough to follow a change in the fleet; Prometheus averages it further


class StarvationMeter:
    """Folds the trainer loop's (waited, busy) seconds into the share waited over the last ``window`` seconds."""

    def __init__(self, gauge: Gauge, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.gauge, self.window, self.clock = gauge, window, clock
        self._spans: deque[tuple[float, float, float]] = deque()  # (ended at, waited, total)
        self._waited = self._total = 0.0

    def record(self, waited: float, busy: float) -> None:
        """One pass of the trainer loop: ``waited`` seconds for a batch, then ``busy`` seconds applying it."""
        now = self.clock()
        self._spans.append((now, waited, waited + busy))
        self._waited += waited
        self._total += waited + busy
        while self._spans and self._spans[0][0] < now - self.window:
            _, old_waited, old_total = self._spans.popleft()
            self._waited -= old_waited
            self._total -= old_total
        if self._total > 0:
            self.gauge.set(min(max(self._waited / self._total, 0.0), 1.0))
