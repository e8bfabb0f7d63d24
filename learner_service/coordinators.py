"""How contributions become batches: synchronous A2C rounds, or A3C's first come, first applied.

Both coordinators have one interface (``Coordinator``), so the servicer offers and the trainer takes
batches without knowing which algorithm runs; what differs is said by the interface itself.
"""

from __future__ import annotations

import abc
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from learner_service.barrier import BarrierClock
from relayrl.rollout import Rollout


@dataclass
class Contribution:
    """One validated message from an actor: a rollout (trajectories) or gradients."""

    session: int
    policy_version: int
    env_steps: int
    rollout: Rollout | None = None
    grads: dict[str, np.ndarray] | None = None
    done: Callable[[], None] = lambda: None  # called once it is applied or dropped (sends the actor an Ack)
    # the episodes it reports (returns, lengths): counted with its env steps when it is settled, not on arrival
    episodes: tuple[np.ndarray, np.ndarray] | None = None


# What became of an offered contribution: "accepted" (it will be applied or dropped, and acknowledged),
# "stale" or "duplicate" (refused as not this round's), "stopped" (the learner stopped while it waited).
Outcome = Literal["accepted", "stale", "duplicate", "stopped"]


class Coordinator(abc.ABC):
    """Between the streams' readers (``offer``) and the trainer thread (``next_batch``, ``advance``)."""

    lag_grows_with_actors: bool  # whether each connected actor adds to the allowed policy lag (trainer.py)

    @abc.abstractmethod
    def join(self, session: int) -> None:
        """A stream opened: ``session`` now takes part."""

    @abc.abstractmethod
    def leave(self, session: int) -> None:
        """A stream closed: nothing more is waited for from ``session``."""

    @abc.abstractmethod
    def offer(self, item: Contribution, stop: threading.Event | None = None) -> Outcome:
        """Hand over a validated contribution; may block while the trainer is behind, until ``stop``."""

    @abc.abstractmethod
    def next_batch(self, wait: float) -> list[Contribution]:
        """The next batch for one update, or [] when none is ready within ``wait`` seconds."""

    @abc.abstractmethod
    def leftover(self) -> list[Contribution]:
        """After the learner stopped: the next accepted batch still to apply before the final checkpoint."""

    @abc.abstractmethod
    def advance(self, version: int) -> list[Contribution]:
        """The trainer published ``version``; returns what was accepted for an older version and is now left behind
        (the caller drops it as stale and acknowledges it)."""

    @abc.abstractmethod
    def depth(self) -> int:
        """Contributions accepted and not yet taken by the trainer."""

    def barrier(self) -> dict[str, float] | None:
        """How long actors waited for the next version behind a synchronous barrier (None: there is none)."""
        return None


def for_algorithm(algo: str, round_timeout: float, queue_size: int) -> Coordinator:
    """A2C's synchronous rounds or A3C's queue."""
    return SyncRounds(round_timeout) if algo == "a2c" else AsyncQueue(queue_size)


class SyncRounds(Coordinator):
    """A2C: round v takes one rollout at version v from every live actor, then one update makes v+1.

    A round closes when every live actor has delivered, or ``timeout`` seconds after it opened with at
    least one rollout in (a hung actor cannot stall the run; a dead one leaves the live set at once).
    Offers never block. The policy lag is always 0: a round takes only its own version.
    """

    lag_grows_with_actors = False

    def __init__(self, timeout: float) -> None:
        self._cond = threading.Condition()
        self._timeout = timeout
        self._live: set[int] = set()
        self._pending: dict[int, Contribution] = {}
        self.version = 0
        self._closed = False
        self._opened = time.monotonic()
        self.clock = BarrierClock()

    def join(self, session: int) -> None:
        with self._cond:
            self._live.add(session)

    def leave(self, session: int) -> None:
        with self._cond:
            self._live.discard(session)
            self._cond.notify_all()

    def offer(self, item: Contribution, stop: threading.Event | None = None) -> Outcome:
        """'accepted', or why not: 'stale' (not this round's version) or 'duplicate' (already delivered)."""
        with self._cond:
            if item.policy_version != self.version or self._closed:
                return "stale"  # another version's, or arrived after its round closed
            if item.session in self._pending:
                return "duplicate"
            self._pending[item.session] = item
            self.clock.arrived()
            self._cond.notify_all()
            return "accepted"

    def _ready(self) -> bool:
        if not self._pending:
            return False
        return self._live <= self._pending.keys() or time.monotonic() >= self._opened + self._timeout

    def next_batch(self, wait: float) -> list[Contribution]:
        with self._cond:
            self._cond.wait_for(self._ready, timeout=wait)
            if not self._ready():
                return []
            # In session order, not arrival order: which rollout arrived first must not change the batch.
            batch = [self._pending[session] for session in sorted(self._pending)]
            self._pending.clear()
            self._closed = True  # until advance(): the update runs on this batch
            self.clock.closed()
            return batch

    def leftover(self) -> list[Contribution]:
        """Nothing: a round that has not closed is dropped; its actors collect again for the next learner."""
        return []

    def advance(self, version: int) -> list[Contribution]:
        """Opens round ``version``. A round still open is left behind only among learner ranks: the group stepped
        without it (this rank stopping, or joining with no actor connected while one's rollout came in)."""
        with self._cond:
            self.version = version
            self._closed = False
            self._opened = time.monotonic()
            left = [self._pending[session] for session in sorted(self._pending)]
            self._pending.clear()
            self.clock.published()
            return left

    def depth(self) -> int:
        with self._cond:
            return len(self._pending)

    def barrier(self) -> dict[str, float]:
        return self.clock.summary()


class AsyncQueue(Coordinator):
    """A3C: contributions are applied one by one in arrival order. The queue is bounded: when the
    optimizer falls behind, senders block and gRPC flow control slows the actors down."""

    lag_grows_with_actors = True

    def __init__(self, size: int) -> None:
        self._queue: queue.Queue[Contribution] = queue.Queue(maxsize=size)
        self.capacity = size
        self.version = 0

    def join(self, session: int) -> None:
        pass

    def leave(self, session: int) -> None:
        pass

    def offer(self, item: Contribution, stop: threading.Event | None = None) -> Outcome:
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return "accepted"
            except queue.Full:
                if stop is not None and stop.is_set():
                    return "stopped"

    def next_batch(self, wait: float) -> list[Contribution]:
        try:
            return [self._queue.get(timeout=wait)]
        except queue.Empty:
            return []

    def leftover(self) -> list[Contribution]:
        """What is still queued, one at a time: it was accepted, so it is applied."""
        return self.next_batch(wait=0)

    def advance(self, version: int) -> list[Contribution]:
        self.version = version
        return []  # the queue's items are applied (or dropped as stale) by the trainer in turn

    def depth(self) -> int:
        return self._queue.qsize()
