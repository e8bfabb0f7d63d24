"""The gRPC servicer: checks every message, then hands it over. No maths here.

Each actor's stream runs on two threads: the handler thread sends (Welcome, then the newest weights
whenever there are newer ones), and a reader thread validates incoming rollouts or gradients and offers
them to the coordinator. A bad message ends that actor's stream with a precise status; the model and
every other stream are untouched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import grpc
import gymnasium as gym
import numpy as np

from learner_service.coordinators import AsyncQueue, Contribution, SyncRounds
from learner_service.metrics import LearnerMetrics
from learner_service.progress import Progress
from learner_service.sessions import Registry, Rejection, Session, WeightsBoard
from relayrl import codec
from relayrl.rollout import RolloutError, episodes_from_proto
from relayrl.rollout import from_proto as rollout_from_proto
from relayrl.v1 import relayrl_pb2 as pb
from relayrl.v1 import relayrl_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


class LearnerServicer(pb_grpc.LearnerServicer):
    def __init__(
        self,
        run_config: pb.RunConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        param_shapes: dict[str, tuple[int, ...]],
        board: WeightsBoard,
        registry: Registry,
        coordinator: SyncRounds | AsyncQueue,
        progress: Progress,
        metrics: LearnerMetrics,
        stop: threading.Event,
    ) -> None:
        self.run_config = run_config
        self.observation_space, self.action_space = observation_space, action_space
        self.param_shapes = param_shapes
        self.board, self.registry, self.coordinator = board, registry, coordinator
        self.progress, self.metrics, self.stop = progress, metrics, stop
        self._wire_spaces = (codec.encode_space(observation_space), codec.encode_space(action_space))

    # --- the stream -------------------------------------------------------------------------------
    def Connect(self, request_iterator: Iterator[pb.ActorMessage], context: grpc.ServicerContext):  # noqa: N802
        try:
            first = next(request_iterator)
        except StopIteration:
            return
        try:
            hello = self._check_hello(first)
            session, replaced = self.registry.join(hello, context.peer())
        except Rejection as rejection:
            self._abort(context, rejection)
            return
        if replaced is not None:
            self.coordinator.leave(replaced.index)
            log.info("actor %s restarted (run %s replaces %s)", hello.actor_id, hello.run_id, replaced.run_id)
        self.coordinator.join(session.index)
        self.metrics.actors_connected.set(self.registry.live_count())
        log.info("actor %s connected from %s", hello.actor_id, context.peer())
        reader = threading.Thread(
            target=self._read, args=(session, request_iterator), daemon=True, name=f"reader-{session.index}"
        )
        try:
            welcome = self._welcome(session)
            reader.start()
            yield welcome
            while context.is_active():
                item = self.board.next_for(session, timeout=0.5)
                if session.failure is not None:
                    self._abort(context, session.failure)
                    return
                if session.closed:
                    return
                if item is None:
                    continue
                message, published_at = item
                if message.HasField("stop"):
                    yield message
                    return
                self.metrics.broadcast_seconds.observe(time.monotonic() - published_at)
                yield message
        finally:
            self.registry.leave(session)
            self.coordinator.leave(session.index)
            self.metrics.actors_connected.set(self.registry.live_count())
            log.info("actor %s disconnected", hello.actor_id)

    def _welcome(self, session: Session) -> pb.LearnerMessage:
        with self.board._cond:  # one consistent (version, message) pair
            session.sent_version = self.board.version
            weights = self.board.message.weights
        obs_space, act_space = self._wire_spaces
        return pb.LearnerMessage(
            welcome=pb.Welcome(
                config=self.run_config,
                observation_space=obs_space,
                action_space=act_space,
                weights=weights,
                actor_index=session.index,
            )
        )

    def _read(self, session: Session, request_iterator: Iterator[pb.ActorMessage]) -> None:
        try:
            for message in request_iterator:
                if session.closed:
                    break
                self.metrics.received_bytes.inc(message.ByteSize())
                item = self._check_contribution(message)
                item.session = session.index
                outcome = (
                    self.coordinator.offer(item)
                    if isinstance(self.coordinator, SyncRounds)
                    else self.coordinator.offer(item, self.stop)
                )
                if outcome in ("stale", "duplicate"):
                    self.metrics.dropped_stale.inc()
        except Rejection as rejection:
            self.metrics.rejected.labels(rejection.reason).inc()
            log.warning("refused a message from %s: %s", session.actor_id, rejection.details)
            session.failure = rejection
        except grpc.RpcError:
            pass  # the stream broke; the finally below cleans up
        except Exception:  # noqa: BLE001 - a bug must not kill the server; it ends this stream
            log.exception("reader for %s failed", session.actor_id)
            session.failure = Rejection(grpc.StatusCode.INTERNAL, "malformed", "internal error")
        finally:
            session.closed = True
            self.board.wake()

    def _abort(self, context: grpc.ServicerContext, rejection: Rejection) -> None:
        context.abort(rejection.code, rejection.details)

    # --- validation ---------------------------------------------------------------------------------
    def _check_hello(self, message: pb.ActorMessage) -> pb.Hello:
        def refuse(code: grpc.StatusCode, reason: str, details: str) -> Rejection:
            self.metrics.rejected.labels(reason).inc()
            return Rejection(code, reason, details)

        if message.WhichOneof("kind") != "hello":
            raise refuse(INVALID, "protocol", "the first message on a stream must be a Hello")
        hello = message.hello
        if hello.proto_version != pb.PROTO_VERSION_CURRENT:
            raise refuse(
                PRECONDITION,
                "wrong_proto_version",
                f"proto version {hello.proto_version}; this learner speaks {pb.PROTO_VERSION_CURRENT}",
            )
        if not hello.actor_id or not hello.run_id:
            raise refuse(INVALID, "malformed", "Hello needs an actor_id and a run_id")
        if hello.env_id and hello.env_id != self.run_config.env_id:
            raise refuse(
                PRECONDITION,
                "wrong_env",
                f"actor runs {hello.env_id!r}; this learner trains {self.run_config.env_id!r}",
            )
        for name, wire, ours in (
            ("observation", hello.observation_space, self.observation_space),
            ("action", hello.action_space, self.action_space),
        ):
            if hello.HasField(f"{name}_space"):
                try:
                    theirs = codec.decode_space(wire)
                except codec.CodecError as exc:
                    raise refuse(INVALID, "invalid_tensor", f"{name} space: {exc}") from None
                if not codec.same_space(theirs, ours):
                    raise refuse(PRECONDITION, "space_mismatch", f"{name} space {theirs} is not the run's {ours}")
        return hello

    def _check_version(self, version: int) -> None:
        if version > self.board.version:
            raise Rejection(
                INVALID, "future_version", f"policy version {version} is newer than the learner's {self.board.version}"
            )

    def _check_contribution(self, message: pb.ActorMessage) -> Contribution:
        kind = message.WhichOneof("kind")
        transport = self.run_config.transport
        if kind == "rollout" and transport == "trajectories":
            return self._check_rollout(message.rollout)
        if kind == "gradient" and transport == "gradients":
            return self._check_gradient(message.gradient)
        raise Rejection(INVALID, "protocol", f"expected a {transport} message, got {kind or 'nothing'}")

    def _check_rollout(self, message: pb.Rollout) -> Contribution:
        self._check_version(message.policy_version)
        try:
            rollout = rollout_from_proto(message, self.observation_space, self.action_space, self.run_config.n_steps)
        except codec.CodecError as exc:
            raise Rejection(INVALID, "invalid_tensor", str(exc)) from None
        except RolloutError as exc:
            text = str(exc)
            reason = "non_finite" if "NaN" in text else "bad_action" if "outside" in text else "space_mismatch"
            raise Rejection(INVALID, reason, text) from None
        self.progress.record_episodes(rollout.num_steps, rollout.episode_returns)
        self._count_episodes(rollout.num_steps, rollout.episode_returns, rollout.episode_lengths)
        return Contribution(0, message.policy_version, rollout.num_steps, rollout=rollout)

    def _check_gradient(self, message: pb.Gradient) -> Contribution:
        self._check_version(message.policy_version)
        try:
            grads = codec.decode_named(message.grads, "grads")
            returns, lengths = episodes_from_proto(message.episodes)
        except (codec.CodecError, RolloutError) as exc:
            raise Rejection(INVALID, "invalid_tensor", str(exc)) from None
        if set(grads) != set(self.param_shapes):
            unknown, missing = set(grads) - set(self.param_shapes), set(self.param_shapes) - set(grads)
            raise Rejection(
                INVALID, "unknown_parameter", f"gradients: unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        for name, array in grads.items():
            if array.shape != self.param_shapes[name] or array.dtype != np.float32:
                raise Rejection(
                    INVALID,
                    "space_mismatch",
                    f"grads[{name}]: {array.dtype.name}{list(array.shape)}, "
                    f"expected float32{list(self.param_shapes[name])}",
                )
            if not np.all(np.isfinite(array)):
                raise Rejection(INVALID, "non_finite", f"grads[{name}] contains NaN or Inf")
        if message.env_steps > 1 << 24:
            raise Rejection(INVALID, "malformed", f"env_steps {message.env_steps} is implausible")
        self.progress.record_episodes(int(message.env_steps), returns)
        self._count_episodes(int(message.env_steps), returns, lengths)
        self.metrics.loss.labels("policy").set(message.policy_loss)
        self.metrics.loss.labels("value").set(message.value_loss)
        self.metrics.loss.labels("entropy").set(message.entropy)
        return Contribution(0, message.policy_version, int(message.env_steps), grads=grads)

    def _count_episodes(self, env_steps: int, returns: np.ndarray, lengths: np.ndarray) -> None:
        self.metrics.env_steps.inc(env_steps)
        self.metrics.episodes.inc(len(returns))
        for value, length in zip(returns.tolist(), lengths.tolist()):
            self.metrics.episode_return.observe(value)
            self.metrics.episode_length.observe(length)
        mean = self.progress.mean_return()
        if mean is not None:
            self.metrics.mean_return.set(mean)
