"""The actor: connect to the learner, collect rollouts and send them, reconnect with backoff.

Each start has a fresh ``run_id``; env, policy and collector are kept across reconnects to the same learner
run. ``run`` returns when the learner says training is over or ``stop`` is set (main.py sets it on SIGTERM).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import grpc

from actor_service.client import Backoff, LearnerLink, LinkClosed, auth_metadata, channel_options, open_channel
from actor_service.collector import RolloutCollector
from actor_service.config import ActorConfig
from actor_service.metrics import ActorMetrics
from actor_service.policies import GradientPolicy, TrajectoryPolicy, make_policy
from relayrl import __version__, codec
from relayrl.architecture import architecture
from relayrl.envs import env_kwargs, make_vector_env
from relayrl.health import Health
from relayrl.rollout import Rollout
from relayrl.v1 import relayrl_pb2 as pb

log = logging.getLogger("relayrl.actor")

# A3C flow control: contributions an actor may have sent and not yet had acknowledged. With 2, the next one
# waits in the learner's queue while the learner applies the last, so the learner does not idle between
# updates for an Ack's and a rollout's round trip (it acknowledges after applying). Measured on CartPole
# (1 actor x 32 envs, trajectories, 2 cores): 237 updates/s with 1, 303 with 2; the policy lag goes from
# 1.0 to 1.9. No actor runs further ahead than that: the third waits for the first one's Ack.
A3C_IN_FLIGHT = 2

# gRPC codes with which a learner refuses a message (the stream's end is the actor's fault, not a failure)
REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INTERNAL,
}


@dataclass
class Sent:
    """A contribution handed to a stream: the ``index``-th of that stream; ``taken``: it left this process."""

    message: pb.ActorMessage
    version: int
    index: int
    taken: bool = True


def redelivery(made_with: int, learner_version: int, synchronous: bool) -> str | None:
    """Whether to deliver again a contribution made with policy ``made_with`` that no learner acknowledged,
    now that a learner at ``learner_version`` answers: None to deliver it, or why not (a given_up reason)."""
    if made_with > learner_version:
        return "future_version"  # made with weights the learner lost with a crash: it would be refused
    if synchronous and made_with < learner_version:
        return "stale_version"  # A2C takes only the open round's version
    return None  # A3C: the learner applies it, or drops it as too stale and says so


class Actor:
    def __init__(self, config: ActorConfig, metrics: ActorMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or ActorMetrics()
        self.run_id = uuid.uuid4().hex
        self.actor_id = config.actor_id or f"{socket.gethostname()}-{os.getpid()}"
        self.stop = threading.Event()
        self.collector: RolloutCollector | None = None
        self.policy: TrajectoryPolicy | GradientPolicy | None = None
        self._setup_key: tuple | None = None
        self.version = -1
        self.sent = 0  # contributions handed to gRPC over all connections
        self._last: Sent | None = None  # the newest contribution handed to the open stream
        self._kept: Sent | None = None  # the last one no learner acknowledged, carried to the next stream
        self.run_over: str | None = None  # the learner's reason once it said the run is over
        self.health: Health | None = None  # set by main(); SERVING once the env and model are built

    def hello(self) -> pb.Hello:
        hello = pb.Hello(
            proto_version=pb.PROTO_VERSION_CURRENT,
            actor_id=self.actor_id,
            run_id=self.run_id,
            num_envs=self.config.num_envs,
        )
        if self.config.env:
            hello.env_id = self.config.env
        return hello

    # --- one connection -------------------------------------------------------------------------------
    def _setup(self, welcome: pb.Welcome) -> None:
        """Build env, model and collector for the run; keep them across reconnects to the same run."""
        cfg = welcome.config
        key = (
            cfg.env_id,
            cfg.env_kwargs,
            cfg.clip_rewards,
            cfg.episodic_life,
            cfg.n_steps,
            tuple(sorted(architecture(cfg).items())),
            cfg.transport,
            welcome.observation_space.SerializeToString(),
            welcome.action_space.SerializeToString(),
        )
        if key != self._setup_key:
            if self.collector is not None:
                self.collector.env.close()
            obs_space, act_space = (
                codec.decode_space(welcome.observation_space),
                codec.decode_space(welcome.action_space),
            )
            try:
                env = make_vector_env(cfg.env_id, self.config.num_envs, env_kwargs(cfg.env_kwargs))
            except ValueError as exc:  # EnvError, or kwargs that are not a JSON object
                raise SystemExit(f"relayrl actor: cannot make the learner's env here: {exc}") from None
            if not (
                codec.same_space(env.single_observation_space, obs_space)
                and codec.same_space(env.single_action_space, act_space)
            ):
                raise SystemExit(
                    f"relayrl actor: {cfg.env_id} here has spaces {env.single_observation_space}, "
                    f"{env.single_action_space}; the learner's are {obs_space}, {act_space}"
                )
            seed = self.config.seed if self.config.seed is not None else cfg.seed + 1000 * (welcome.actor_index + 1)
            self.policy = make_policy(cfg, obs_space, act_space, seed, self.config.threads)
            self.collector = RolloutCollector(
                env, self.policy.act, cfg.n_steps, seed, clip_rewards=cfg.clip_rewards, episodic_life=cfg.episodic_life
            )
            self._setup_key = key
            self.metrics.build_info.clear()
            self.metrics.build_info.labels(__version__, "actor", cfg.algo, cfg.env_id).set(1)
        else:
            log.info("same run as before: keeping the %d environments mid-episode", self.config.num_envs)
        self._apply(welcome.weights)
        if self.health is not None:
            self.health.set(True)

    def _apply(self, weights: pb.Weights) -> None:
        self.policy.load(weights)
        self.version = weights.version
        self.metrics.policy_version.set(self.version)

    def _record(self, rollout: Rollout, seconds: float, sent: int) -> None:
        m = self.metrics
        m.rollout_seconds.observe(seconds)
        m.env_steps.inc(rollout.num_steps)
        m.episodes.inc(len(rollout.episode_returns))
        for value, length in zip(rollout.episode_returns.tolist(), rollout.episode_lengths.tolist()):
            m.episode_return.observe(value)
            m.episode_length.observe(length)
        m.sent_bytes.inc(sent)

    def _work(self, link: LearnerLink) -> None:
        run = self._setup_key
        self._setup(link.welcome)
        cfg = link.welcome.config
        synchronous = cfg.algo == "a2c"
        if self._kept is not None:
            kept, self._kept = self._kept, None
            self._deliver_again(link, kept, "new_run" if self._setup_key != run else None, synchronous)
        while not self.stop.is_set():
            started = time.perf_counter()
            rollout = self.collector.collect(self.version)
            message = self.policy.contribution(rollout)
            self._record(rollout, time.perf_counter() - started, message.ByteSize())
            if not synchronous:  # A3C flow control (A3C_IN_FLIGHT)
                link.wait_acked(link.queued - (A3C_IN_FLIGHT - 1), self.stop)
            self._send(link, message, rollout.policy_version)
            if synchronous:  # on-policy: the next rollout needs the weights this one will produce
                newest = self._await_newer(link, self.version)
            else:
                newest = link.take_weights(self.version)
            if newest is not None:
                self._apply(newest)

    def _send(self, link: LearnerLink, message: pb.ActorMessage, version: int) -> None:
        link.send(message, self.stop)
        self._last = Sent(message, version, link.queued)

    def _deliver_again(self, link: LearnerLink, kept: Sent, why_not: str | None, synchronous: bool) -> None:
        """A learner answers again: deliver the contribution no learner acknowledged, or count it given up."""
        why_not = why_not or redelivery(kept.version, self.version, synchronous)
        if why_not is not None:
            self._give_up(kept, why_not)
            return
        log.info("delivering again the unacknowledged contribution of policy version %d", kept.version)
        try:
            self._send(link, kept.message, kept.version)
        except LinkClosed:
            self._kept = kept  # this stream went too: still ours to deliver
            raise
        if kept.taken:
            self.metrics.contributions_resent.inc()
        if synchronous:  # it is this round's: wait for the round's weights, as after any A2C contribution
            newest = self._await_newer(link, self.version)
            if newest is not None:
                self._apply(newest)

    def _give_up(self, kept: Sent, reason: str) -> None:
        log.info("not delivering the unacknowledged contribution of policy version %d again: %s", kept.version, reason)
        if kept.taken:  # one that never left this process was never counted as sent
            self.metrics.contributions_given_up.labels(reason).inc()

    def _end_cause(self, link: LearnerLink) -> str:
        """Why ``link`` ended, as relayrl_contributions_unacked_total's cause."""
        if link.stop_reason is not None:
            return "finished"
        if self.stop.is_set():
            return "actor_stopping"
        if link.error is not None and link.error.code() in REFUSALS:
            return "rejected"
        if link.error is not None and "shutting down" in (link.error.details() or ""):
            return "learner_stopping"
        return "learner_gone"  # killed, or the network dropped the connection

    def _settle(self, link: LearnerLink) -> None:
        """The stream ended: count what it left unacknowledged and keep the last of it to deliver again."""
        unacked = max(link.sent - link.acked, 0)
        cause = self._end_cause(link)
        last, self._last = self._last, None
        if last is not None and link.acked < last.index:  # the newest one's Ack never came
            last.taken = link.sent >= last.index
            self._kept = last
        superseded = unacked - (1 if self._kept is not None and self._kept.taken else 0)
        if unacked:
            self.metrics.contributions_unacked.labels(cause).inc(unacked)
        if superseded > 0:
            self.metrics.contributions_given_up.labels("superseded").inc(superseded)
        log.info(
            "stream ended (%s): %d contributions sent, %d acknowledged, %d unacknowledged%s",
            cause,
            link.sent,
            link.acked,
            unacked,
            f"; keeping the last (policy version {self._kept.version})" if self._kept is not None else "",
        )

    def _await_newer(self, link: LearnerLink, version: int) -> pb.Weights | None:
        """Block until weights newer than ``version`` arrive (None if we are stopping)."""
        while not self.stop.is_set():
            weights = link.take_weights(version, wait=0.25)
            if weights is not None:
                return weights
        return None

    # --- the reconnect loop -----------------------------------------------------------------------------
    def run(self) -> int:
        """Connect and work until the learner says training is over (0) or ``stop`` is set (0)."""
        backoff = Backoff(self.config.backoff_initial, self.config.backoff_max)
        connections = 0
        c = self.config
        while not self.stop.is_set():
            channel = open_channel(
                c.learner, channel_options(c), c.tls_ca, c.tls_cert, c.tls_key, c.tls_server_name, tls=c.tls
            )
            try:
                link = LearnerLink(
                    channel,
                    self.hello(),
                    c.connect_timeout,
                    auth_metadata(c.auth_token),
                    self.stop,
                    on_sent=self.metrics.contributions_sent.inc,
                    on_acked=self.metrics.contributions_acked.inc,
                )
            except (grpc.FutureTimeoutError, grpc.RpcError, LinkClosed, StopIteration) as exc:
                channel.close()
                delay = backoff.next()
                if isinstance(exc, grpc.RpcError):
                    reason = f"{exc.code().name}: {exc.details()}"
                elif isinstance(exc, grpc.FutureTimeoutError):
                    reason = f"no connection within {c.connect_timeout:g}s"
                else:
                    reason = str(exc) or type(exc).__name__
                log.info("learner %s unavailable (%s); retrying in %.2fs", c.learner, reason, delay)
                self.stop.wait(delay)
                continue
            backoff.reset()
            connections += 1
            if connections > 1:
                self.metrics.reconnects.inc()
            self.metrics.learner_connected.set(1)
            log.info(
                "connected to %s as %s (run %s), policy version %d, actor index %d",
                self.config.learner,
                self.actor_id,
                self.run_id,
                link.welcome.weights.version,
                link.welcome.actor_index,  # seeds its envs and sampling (unless --seed): unique per learner group
            )
            try:
                self._work(link)
            except LinkClosed as exc:
                log.info("link closed: %s", exc)
            finally:
                self.metrics.received_bytes.inc(link.received_bytes)
                link.close()
                channel.close()
                self.sent += link.sent
                self.metrics.learner_connected.set(0)
                self._settle(link)
            if link.stop_reason is not None:
                self.run_over = link.stop_reason
                if self.config.when_finished == "wait":
                    # Never dial again: the run is over, and a new run's learner at the same address is not ours.
                    log.info("learner finished training (%s); idle until SIGTERM (--when-finished wait)",
                             link.stop_reason)
                    self.stop.wait()
                else:
                    log.info("learner finished training (%s); exiting", link.stop_reason)
                break
            if not self.stop.is_set():
                self.stop.wait(backoff.next())
        if self._kept is not None:
            self._give_up(self._kept, "actor_exit")
            self._kept = None
        return 0
