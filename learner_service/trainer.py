"""The trainer thread: the only code that touches the model and optimizer while training runs.

It takes batches from the coordinator, turns them into one optimizer step each, bumps the policy
version and publishes the new weights. Stale contributions are dropped here, at the moment of use.

How stale is too stale (A3C): a contribution's lag is the number of updates applied between the
version it was computed on and its own. An actor keeps at most two contributions unacknowledged
(actor_service.actor.A3C_IN_FLIGHT), so its own previous ones add at most 2; each *other* connected actor
adds the contributions it gets applied in that window, about 2 when actors run at similar speeds. So a
fixed cap drops more of the work the more actors there are: measured (CartPole, gradients, 16 envs per
actor, 60 s on 2 busy cores, one contribution in flight), a fixed cap of 8 dropped 4.5% of the
contributions at 4 actors and 41% at 8. The cap therefore grows with the actors: --max-policy-lag +
LAG_PER_ACTOR x (connected actors - 1). --max-policy-lag is the cap for a lone actor and every further
actor allows 4 more versions: with it, the lags were mean 7.8 at 4 actors (cap 20) and mean 19.6 at 8
(cap 36), and 0.04% and 0.3% were dropped (30 s each, two in flight), the stragglers (an actor still
starting up while the others train, say).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from learner_service.coordinators import Contribution, Coordinator
from learner_service.device_batch import host_state, stage, stage_rollouts
from learner_service.group import STOP_REASONS, GroupUpdate, average_gradients, sum_over_ranks, weights_identical
from learner_service.metrics import LearnerMetrics
from learner_service.optim import Optimizer
from learner_service.progress import Progress
from learner_service.rejections import Reason
from learner_service.sessions import WeightsBoard
from learner_service.starvation import StarvationMeter
from learner_service.statistics import RunningStatistics
from relayrl.loss import LossConfig, LossTerms, actor_critic_loss
from relayrl.model import ActorCritic
from relayrl.rollout import Rollout
from relayrl.v1 import relayrl_pb2 as pb
from relayrl.wire import encode_weights

log = logging.getLogger(__name__)

LAG_PER_ACTOR = 4  # versions of allowed lag added by each connected actor beyond the first (see above)
DROP_WARNING_EVERY = 10.0  # seconds: at most one warning about stale drops per interval


def update_from_rollouts(
    model: ActorCritic,
    optimizer: Optimizer,
    rollouts: Sequence[Rollout],
    loss_config: LossConfig,
    max_grad_norm: float,
) -> tuple[LossTerms, float]:
    """One optimizer step on the actor-critic loss over all rollouts; returns the terms and grad norm.

    On CUDA the host waits for the device once (learner_service.device_batch counts every wait): the batch
    goes over in one non-blocking copy, the loss (GAE included) and its backward pass run there, and the one
    synchronisation reads the diagnostics and the gradient norm together; the norm decides the step."""
    terms = backward(model, optimizer, rollouts, loss_config)
    return terms, clip_and_step(model, optimizer, max_grad_norm, terms)


def backward(
    model: ActorCritic, optimizer: Optimizer, rollouts: Sequence[Rollout], loss_config: LossConfig
) -> LossTerms:
    """The actor-critic loss over all rollouts and its gradient, not yet applied."""
    optimizer.zero_grad(set_to_none=True)
    terms = actor_critic_loss(model, rollouts, loss_config, gather=stage_rollouts)
    terms.loss.backward()
    return terms


def clip_and_step(
    model: ActorCritic, optimizer: Optimizer, max_grad_norm: float, terms: LossTerms | None = None
) -> float:
    """Clip the gradient norm and step, unless the loss or gradient overflowed: finite but extreme inputs
    (rewards near float32's maximum, say) must not write NaN into every parameter. Returns the norm, read
    on the host with ``terms``' diagnostics in one copy when given."""
    total = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    norm = terms.to_host(total)[0] if terms is not None else float(total)
    if not math.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteUpdate(f"gradient norm {norm}")
    optimizer.step()
    return norm


class NonFiniteUpdate(ArithmeticError):
    """A batch produced a non-finite gradient; nothing was applied."""


def apply_gradients(
    model: ActorCritic, optimizer: Optimizer, grads: dict[str, np.ndarray], max_grad_norm: float
) -> float:
    """One optimizer step with an actor's gradients (A3C), clipped here as well; returns the grad norm."""
    staged = stage(grads, next(model.parameters()).device)  # copies: the wire's buffers are read-only
    for name, param in model.named_parameters():
        param.grad = staged[name]
    return clip_and_step(model, optimizer, max_grad_norm)


class Trainer:
    def __init__(
        self,
        model: ActorCritic,
        optimizer: Optimizer,
        coordinator: Coordinator,
        board: WeightsBoard,
        progress: Progress,
        metrics: LearnerMetrics,
        loss_config: LossConfig,
        max_grad_norm: float,
        max_policy_lag: int,
        version: int = 0,
        on_update: Callable[[], None] | None = None,
        connected: Callable[[], int] | None = None,
        lr_at: Callable[[int], float] | None = None,
        group: GroupRole | None = None,
    ) -> None:
        self.model, self.optimizer = model, optimizer
        self.coordinator, self.board = coordinator, board
        self.progress, self.metrics = progress, metrics
        self.loss_config, self.max_grad_norm, self.max_policy_lag = loss_config, max_grad_norm, max_policy_lag
        self.version = version
        self.on_update = on_update
        self.connected = connected  # how many actors are connected (scales the A3C lag cap)
        self.lr_at = lr_at  # the learning rate at a number of env steps (a schedule), or None: constant
        if lr_at is not None:  # a resumed run continues its schedule from its first update
            optimizer.lr = lr_at(progress.env_steps)
        # among ranks the statistics fold every rank's samples (a sum over the ranks), so they stay the same
        reduce = None if group is None else functools.partial(sum_over_ranks, device=next(model.parameters()).device)
        self.statistics = RunningStatistics(model, loss_config.gamma, reduce)
        self.group = group
        self.weights_checks = 0  # versions at which every rank was found to hold the same weights
        self._env_steps_shared = progress.own_env_steps()  # a rank's env steps already told to the group
        self.starvation = StarvationMeter(metrics.starvation)
        self._drops_unlogged, self._next_drop_warning = 0, 0.0
        # The last update's diagnostics, read by the TensorBoard writer on another thread (one dict swap
        # per update, so logging costs the trainer nothing measurable)
        self.last_update: dict[str, float] = {}
        self.lock = threading.Lock()  # held during an update; snapshotting the model takes it too
        self._advance()
        self.publish()

    def publish_new_version(self) -> int:
        """Publish the model as it is as the next policy version, without an update; returns the version."""
        with self.lock:
            self._next_version()
            return self.version

    def _next_version(self) -> None:
        """Bump the version, open the coordinator to it and publish it. Call with the lock held."""
        self.version += 1
        self._advance()
        self.publish()

    def _advance(self) -> None:
        """Open the coordinator to the current version; what it left behind of an older round is stale now:
        dropped as such and acknowledged, as a stale arrival is (learner ranks: the group stepped without this
        rank's open round; uncounted and unacknowledged, the chaos soak's books found it)."""
        for item in self.coordinator.advance(self.version):
            self._drop_stale(self.version - item.policy_version, self.lag_cap())
            item.done()

    def publish(self) -> None:
        """Publish the model's weights as the current version (serialized once, for every stream)."""
        message = pb.LearnerMessage()
        encode_weights(host_state(self.model), self.version, into=message.weights)  # one copy off the device
        self.board.publish(self.version, message)
        self.metrics.policy_version.set(self.version)

    def lag_cap(self) -> int:
        """The largest policy lag applied: --max-policy-lag, plus LAG_PER_ACTOR per connected actor beyond the
        first in A3C (A2C is always 0: its rounds take only the current version)."""
        if self.connected is None or not self.coordinator.lag_grows_with_actors:
            return self.max_policy_lag
        return self.max_policy_lag + LAG_PER_ACTOR * max(self.connected() - 1, 0)

    def _drop_stale(self, lag: int, cap: int) -> None:
        """Count a contribution dropped as too stale; warn about drops at most every DROP_WARNING_EVERY s."""
        self.metrics.dropped_stale.inc()
        self.metrics.contributions.labels("dropped_stale").inc()
        self.progress.record_drop()
        self._drops_unlogged += 1
        now = time.monotonic()
        if now >= self._next_drop_warning:
            log.warning(
                "dropped %d stale contribution(s) since the last warning (latest lag %d > cap %d with %d actors "
                "connected; raise --max-policy-lag to keep them)",
                self._drops_unlogged,
                lag,
                cap,
                self.connected() if self.connected is not None else 0,
            )
            self._drops_unlogged, self._next_drop_warning = 0, now + DROP_WARNING_EVERY

    def step(self, batch: list[Contribution]) -> bool:
        """Apply one batch; returns whether an update happened. Every item is acknowledged either way."""
        try:
            return self._update(batch)
        finally:
            for item in batch:
                item.done()

    def _update(self, batch: list[Contribution]) -> bool:
        fresh: list[Contribution] = []
        cap = self.lag_cap()
        for item in batch:
            lag = self.version - item.policy_version
            if lag > cap:
                self._drop_stale(lag, cap)
                continue
            self.metrics.policy_lag.observe(lag)
            fresh.append(item)
        if not fresh:
            self._advance()  # reopens an A2C round that closed on stale data only
            return False
        started = time.perf_counter()
        with self.lock:
            try:
                last: dict[str, float] = {}  # a3c gradients: the loss was computed by the actor
                if fresh[0].grads is not None:
                    norm = apply_gradients(self.model, self.optimizer, fresh[0].grads, self.max_grad_norm)
                    samples = fresh[0].env_steps
                else:
                    rollouts = self.statistics.before_update([c.session for c in fresh], [c.rollout for c in fresh])
                    terms, norm = update_from_rollouts(
                        self.model, self.optimizer, rollouts, self.loss_config, self.max_grad_norm
                    )
                    self.statistics.after_update(rollouts)
                    samples = terms.num_samples
                    last = self._diagnostics(terms)
            except NonFiniteUpdate as exc:
                self._skipped(exc, len(fresh))
                norm = None
            if self.lr_at is not None:
                self.optimizer.lr = self.lr_at(self.progress.env_steps)
            # A new version even when skipped: A2C actors wait for it before collecting again.
            self._next_version()
        if norm is None:
            return False
        self._applied(started, len(fresh), samples, norm, last, [self.version - 1 - c.policy_version for c in fresh])
        return True

    def _diagnostics(self, terms: LossTerms) -> dict[str, float]:
        """The loss terms of an update, to Prometheus and as TensorBoard's last_update reads them."""
        self.metrics.loss.labels("policy").set(terms.policy_loss)
        self.metrics.loss.labels("value").set(terms.value_loss)
        self.metrics.loss.labels("entropy").set(terms.entropy)
        return {"policy_loss": terms.policy_loss, "value_loss": terms.value_loss, "entropy": terms.entropy,
                "explained_variance": terms.explained_variance}

    def _skipped(self, exc: NonFiniteUpdate, contributions: int) -> None:
        """Count an update skipped for a non-finite loss or gradient (nothing was applied)."""
        log.warning("skipped an update: %s", exc)
        self.metrics.rejected.labels(Reason.NON_FINITE).inc(contributions)
        self.metrics.contributions.labels("non_finite").inc(contributions)

    def _applied(self, started: float, contributions: int, samples: int, norm: float, last: dict[str, float],
                 lags: list[int]) -> None:
        """Count an update applied (metrics, progress, the diagnostics TensorBoard reads), then on_update."""
        seconds = time.perf_counter() - started
        self.metrics.update_seconds.observe(seconds)
        self.metrics.updates.inc()
        self.metrics.contributions.labels("applied").inc(contributions)
        self.metrics.samples.inc(samples)
        self.metrics.grad_norm.set(norm)
        self.last_update = {**last, "grad_norm": norm, "learning_rate": self.optimizer.lr}
        self.progress.record_update(self.version, samples, lags, seconds)
        if self.on_update is not None:
            self.on_update()

    def run(self, stop: threading.Event) -> None:
        """Apply batches until ``stop``, then drain. An exception propagates: the caller (Learner._train)
        makes it loud and stops the learner; the trainer never swallows its own failures."""
        if self.group is not None:
            return self._run_in_group(stop)
        while not stop.is_set():
            waiting = time.perf_counter()
            batch = self.coordinator.next_batch(wait=0.1)
            working = time.perf_counter()
            if batch:
                self.step(batch)
            self.starvation.record(working - waiting, time.perf_counter() - working)
        self.drain()

    def drain(self) -> None:
        """Apply what was accepted and is still waiting (A3C's queue) before the final checkpoint. An A2C
        round that has not closed is dropped: its actors get the next learner's weights and collect again."""
        while batch := self.coordinator.leftover():  # readers stop offering once stop is set
            self.step(batch)

    # --- data-parallel A2C (learner_service/group.py) -------------------------------------------------
    def _run_in_group(self, stop: threading.Event) -> None:
        """Every rank makes one collective per update, in step: it waits for its own round (a rank without
        actors joins at once with nothing, so it never stalls the others), and a stop on any rank travels in
        the same collective, so every rank stops after the same update, with the same version and weights."""
        assert self.group is not None
        while True:
            batch: list[Contribution] = []
            while not stop.is_set():
                batch = self.coordinator.next_batch(wait=0.1)
                if batch or not self.connected():
                    break
            reason = self.group.reason() if stop.is_set() else None
            # Acknowledged once the update went through: an all-reduce that raised (a rank died) applied nothing,
            # and the learner goes down with the batch unacknowledged, so its actors deliver it again (acknowledged
            # in a finally, the chaos soak's rank kills found actors told it was applied)
            agreed = self._group_update(batch, reason)
            for item in batch:
                item.done()
            if agreed.stop is not None:
                if reason is None:
                    self.group.stopped_by_group(agreed.stop)
                return

    def _group_update(self, batch: list[Contribution], reason: str | None) -> GroupUpdate:
        """This rank's gradient, the group's sample-weighted mean of them (one all-reduce), the same clipped
        step on every rank; then the next version, as a learner alone publishes it."""
        assert self.group is not None
        started = time.perf_counter()
        shared = self.progress.own_env_steps()
        env_steps, self._env_steps_shared = shared - self._env_steps_shared, shared
        with self.lock:
            last: dict[str, float] = {}
            params = list(self.model.parameters())
            self.optimizer.zero_grad(set_to_none=True)
            samples = 0
            # every rank, with a batch or not: the return statistics fold the whole group's (a collective)
            rollouts = self.statistics.before_update([c.session for c in batch], [c.rollout for c in batch])
            if batch:
                terms = backward(self.model, self.optimizer, rollouts, self.loss_config)
                samples = int(sum(r.valid.sum() for r in rollouts))  # the loss is a mean over valid steps
                last = self._diagnostics(terms)  # this rank's batch's loss terms
            # a reason the group does not rank (a signal: "signal") stops it as "stopped"
            stop = None if reason is None else reason if reason in STOP_REASONS else "stopped"
            agreed = average_gradients(params, samples, env_steps, stop)
            self.progress.record_peer_env_steps(int(agreed.env_steps) - env_steps)
            if agreed.samples == 0:  # no rank had a batch: nothing to step, no new version
                return agreed
            try:
                norm = clip_and_step(self.model, self.optimizer, self.max_grad_norm)
                self.statistics.after_update(rollouts)  # every rank: a collective when normalising observations
            except NonFiniteUpdate as exc:  # the same on every rank: they all hold the same gradient
                self._skipped(exc, len(batch))
                norm = None
            if self.lr_at is not None:
                self.optimizer.lr = self.lr_at(self.progress.env_steps)
            self._next_version()
            check = self.group.check_every
            if check and self.version % check == 0:
                if not weights_identical([*params, *self.model.buffers()]):  # normalisation statistics too
                    raise RuntimeError(f"the learner ranks' weights differ at version {self.version}")
                self.weights_checks += 1
        if norm is not None:  # the update trained on the group's samples, this rank's contributions
            self._applied(started, len(batch), int(agreed.samples), norm, last, [0] * len(batch))
        return agreed


@dataclass
class GroupRole:
    """What a trainer among data-parallel learners (group.py) needs from its learner."""

    reason: Callable[[], str]  # why this rank stopped, once its stop event is set
    stopped_by_group: Callable[[str], None]  # another rank's reason ends this rank too
    check_every: int  # updates between two checks that every rank holds the same weights (0: never)
