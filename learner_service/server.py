"""The gRPC servicer: checks every message, then hands it over. No maths here.

Each actor's stream runs on two threads: the handler thread sends (Welcome, then the newest weights
whenever there are newer ones), and a reader thread validates incoming rollouts or gradients and offers
them to the coordinator. A bad message ends that actor's stream with a precise status and is counted in
relayrl_rejected_total{reason}; the model and every other stream are untouched.

Messages reach the servicer through ``decode_message`` rather than gRPC's own parsing, so that bytes that
are not an ActorMessage (INVALID_ARGUMENT, "malformed") and messages over --max-message-bytes
(RESOURCE_EXHAUSTED, "too_large") are counted like every other refusal. gRPC's own receive limit is set
to twice --max-message-bytes (``grpc_server.receive_limit``): above that gRPC refuses with the same code
before any RelayRL code runs, so only those go uncounted, and no message bigger than that is ever buffered.

Every refusal is a ``Rejection`` carrying its reason (rejections.py), raised where the fault is found.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Iterator

import grpc
import gymnasium as gym
import numpy as np

from learner_service.coordinators import Contribution, Coordinator
from learner_service.metrics import LearnerMetrics
from learner_service.progress import Progress
from learner_service.rejections import Reason, Rejection, rollout_rejection
from learner_service.sessions import Registry, Session, WeightsBoard
from relayrl import codec
from relayrl.rollout import RolloutError
from relayrl.v1 import relayrl_pb2 as pb
from relayrl.v1 import relayrl_pb2_grpc as pb_grpc
from relayrl.wire import episodes_from_proto, rollout_from_proto

log = logging.getLogger(__name__)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
TOO_LARGE = grpc.StatusCode.RESOURCE_EXHAUSTED
SERVICE = pb.DESCRIPTOR.services_by_name["Learner"].full_name  # relayrl.v1.Learner
MAX_ID_CHARS = 256


def serialize_response(message: pb.LearnerMessage | bytes) -> bytes:
    """Weights are serialized once per version by the WeightsBoard and pass through as bytes."""
    return message if isinstance(message, bytes) else message.SerializeToString()


class Undecodable:
    """What decode_message hands the servicer in place of a message it refused to parse."""

    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection


def decode_message(max_bytes: int):
    """gRPC request deserializer: an ActorMessage, or an Undecodable saying why not (size is checked first)."""

    def decode(data: bytes) -> pb.ActorMessage | Undecodable:
        if len(data) > max_bytes:
            return Undecodable(
                Rejection(TOO_LARGE, Reason.TOO_LARGE, f"a {len(data)}-byte message; the limit is {max_bytes} bytes")
            )
        try:
            return pb.ActorMessage.FromString(data)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError, whatever the backend
            return Undecodable(
                Rejection(INVALID, Reason.MALFORMED, "not an ActorMessage (protobuf decoding failed)")
            )

    return decode


class LearnerServicer(pb_grpc.LearnerServicer):
    def __init__(
        self,
        run_config: pb.RunConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        param_shapes: dict[str, tuple[int, ...]],
        board: WeightsBoard,
        registry: Registry,
        coordinator: Coordinator,
        progress: Progress,
        metrics: LearnerMetrics,
        stop: threading.Event,
        max_message_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.run_config = run_config
        self.observation_space, self.action_space = observation_space, action_space
        self.param_shapes = param_shapes
        self.board, self.registry, self.coordinator = board, registry, coordinator
        self.progress, self.metrics, self.stop = progress, metrics, stop
        self.max_message_bytes = max_message_bytes
        self.discarded = 0  # valid contributions that arrived after the learner began to stop
        self._refusals: collections.Counter[str] = collections.Counter()
        self._wire_spaces = (codec.encode_space(observation_space), codec.encode_space(action_space))

    def rpc_handler(self) -> grpc.GenericRpcHandler:
        """The Learner service with RelayRL's own request decoding (see decode_message)."""
        connect = grpc.stream_stream_rpc_method_handler(
            self.Connect,
            request_deserializer=decode_message(self.max_message_bytes),
            response_serializer=serialize_response,
        )
        return grpc.method_handlers_generic_handler(SERVICE, {"Connect": connect})

    # --- the stream -------------------------------------------------------------------------------
    def Connect(self, request_iterator: Iterator[pb.ActorMessage], context: grpc.ServicerContext):  # noqa: N802
        if self.stop.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the learner is shutting down")
        try:
            first = next(request_iterator)
        except (StopIteration, grpc.RpcError):
            return
        try:
            hello = self._check_hello(first)
            session, replaced = self.registry.join(hello, context.peer())
        except Rejection as rejection:
            self._refuse(rejection, "a Hello", context.peer())
            self._abort(context, rejection)
            return
        if replaced is not None:
            self.coordinator.leave(replaced.index)
            log.info("actor %s reconnected: its stale stream is closed", hello.actor_id)
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
                if isinstance(message, pb.LearnerMessage) and message.HasField("stop"):
                    if not self.board.finished:  # going away, not done: the actor should reconnect
                        context.abort(grpc.StatusCode.UNAVAILABLE, "the learner is shutting down")
                    yield message
                    return
                if published_at is not None:  # weights, not an Ack
                    self.metrics.broadcast_seconds.observe(time.monotonic() - published_at)
                yield message
        finally:
            self.registry.leave(session)
            self.coordinator.leave(session.index)
            self.metrics.actors_connected.set(self.registry.live_count())
            log.info(
                "actor %s disconnected (run %s, %d contributions received)",
                hello.actor_id,
                hello.run_id,
                session.received,
            )

    def _welcome(self, session: Session) -> pb.LearnerMessage:
        session.sent_version, message = self.board.snapshot()
        obs_space, act_space = self._wire_spaces
        return pb.LearnerMessage(
            welcome=pb.Welcome(
                config=self.run_config,
                observation_space=obs_space,
                action_space=act_space,
                weights=message.weights,
                actor_index=session.index,
            )
        )

    def _read(self, session: Session, request_iterator: Iterator[pb.ActorMessage]) -> None:
        try:
            for message in request_iterator:
                if session.closed:
                    break
                if isinstance(message, Undecodable):
                    raise message.rejection
                self.metrics.received_bytes.inc(message.ByteSize())
                item = self._check_contribution(message)
                item.session = session.index
                item.done = functools.partial(self._settle, session, item)
                self.metrics.contributions_received.inc()
                session.received += 1
                if self.stop.is_set():  # stopping: no new work; the stream ends with UNAVAILABLE shortly
                    self._discard()  # not acknowledged: the actor delivers it again to the next learner
                    continue
                outcome = self.coordinator.offer(item, self.stop)
                if outcome == "accepted":
                    session.accepted += 1
                elif outcome in ("stale", "duplicate"):
                    if outcome == "stale":  # a duplicate is no sign of lag: the stale-drops alert must not see it
                        self.metrics.dropped_stale.inc()
                    self.metrics.contributions.labels(f"dropped_{outcome}").inc()
                    self.progress.record_drop()
                    if outcome == "stale":
                        item.done()
                    else:  # its env steps are the delivery already in the round: acknowledged, not counted again
                        self.board.acknowledge(session)
                else:
                    self._discard()
        except Rejection as rejection:
            self._refuse(rejection, "a message", session.actor_id)
            session.failure = rejection
        except grpc.RpcError:
            pass  # the stream broke; the finally below cleans up
        except Exception:  # noqa: BLE001 - a bug must not kill the server; it ends this stream
            log.exception("reader for %s failed", session.actor_id)
            session.failure = Rejection(grpc.StatusCode.INTERNAL, Reason.MALFORMED, "internal error")
        finally:
            session.closed = True
            self.board.wake()

    def _settle(self, session: Session, item: Contribution) -> None:
        """A contribution applied or dropped: acknowledged (the actor never sends it again), and only now are its
        env steps and episodes counted. One discarded while stopping, or in an A2C round left unapplied, is not
        acknowledged: the actor delivers it again to the next learner, which counts it then, once. Counted on
        arrival, a run resumed from the final checkpoint counted those steps twice (and the summary showed more
        env steps than the checkpoint it ended with)."""
        self.board.acknowledge(session)
        returns, lengths = item.episodes if item.episodes is not None else (np.zeros(0), np.zeros(0))
        self.progress.record_episodes(item.env_steps, returns, lengths)
        self._count_episodes(item.env_steps, returns, lengths)

    def _discard(self) -> None:
        self.discarded += 1
        self.metrics.contributions.labels("discarded_stopping").inc()

    def _abort(self, context: grpc.ServicerContext, rejection: Rejection) -> None:
        context.abort(rejection.code, rejection.details)

    def _refuse(self, rejection: Rejection, what: str, whom: str) -> None:
        """Count a refusal (every one is counted, exactly once, here) and log it: the first ten of each
        reason, then the 16th, 32nd, 64th... so that a hostile peer cannot flood the log."""
        self.metrics.rejected.labels(rejection.reason).inc()
        self._refusals[rejection.reason] += 1
        n = self._refusals[rejection.reason]
        if n <= 10 or n & (n - 1) == 0:
            log.warning("refused %s from %s (%s, #%d): %s", what, whom, rejection.reason, n, rejection.details)

    # --- validation ---------------------------------------------------------------------------------
    def _check_hello(self, message: pb.ActorMessage | Undecodable) -> pb.Hello:
        if isinstance(message, Undecodable):
            raise message.rejection
        if message.WhichOneof("kind") != "hello":
            raise Rejection(INVALID, Reason.PROTOCOL, "the first message on a stream must be a Hello")
        hello = message.hello
        if hello.proto_version != pb.PROTO_VERSION_CURRENT:
            known = hello.proto_version in pb.ProtoVersion.values()
            name = pb.ProtoVersion.Name(hello.proto_version) if known else str(hello.proto_version)
            older = 0 < hello.proto_version < pb.PROTO_VERSION_CURRENT
            older = " (an older RelayRL actor: upgrade it)" if older else ""
            raise Rejection(
                PRECONDITION,
                Reason.WRONG_PROTO_VERSION,
                f"proto version {name}{older}; this learner speaks {pb.PROTO_VERSION_CURRENT} (PROTO_VERSION_CURRENT)",
            )
        if not hello.actor_id or not hello.run_id:
            raise Rejection(INVALID, Reason.MALFORMED, "Hello needs an actor_id and a run_id")
        for name, value in (("actor_id", hello.actor_id), ("run_id", hello.run_id)):
            if len(value) > MAX_ID_CHARS or not value.isprintable():
                raise Rejection(
                    INVALID, Reason.MALFORMED, f"Hello.{name} must be at most {MAX_ID_CHARS} printable characters"
                )
        if hello.env_id and hello.env_id != self.run_config.env_id:
            raise Rejection(
                PRECONDITION,
                Reason.WRONG_ENV,
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
                    raise Rejection(INVALID, Reason.INVALID_TENSOR, f"{name} space: {exc}") from None
                if not codec.same_space(theirs, ours):
                    raise Rejection(
                        PRECONDITION, Reason.SPACE_MISMATCH, f"{name} space {theirs} is not the run's {ours}"
                    )
        return hello

    def _check_version(self, version: int) -> None:
        if version > self.board.version:
            raise Rejection(
                INVALID,
                Reason.FUTURE_VERSION,
                f"policy version {version} is newer than the learner's {self.board.version}",
            )

    def _check_contribution(self, message: pb.ActorMessage) -> Contribution:
        kind = message.WhichOneof("kind")
        transport = self.run_config.transport
        if kind == "rollout" and transport == "trajectories":
            return self._check_rollout(message.rollout)
        if kind == "gradient" and transport == "gradients":
            return self._check_gradient(message.gradient)
        raise Rejection(INVALID, Reason.PROTOCOL, f"expected a {transport} message, got {kind or 'nothing'}")

    def _check_rollout(self, message: pb.Rollout) -> Contribution:
        self._check_version(message.policy_version)
        try:
            rollout = rollout_from_proto(message, self.observation_space, self.action_space, self.run_config.n_steps)
        except codec.CodecError as exc:
            raise Rejection(INVALID, Reason.INVALID_TENSOR, str(exc)) from None
        except RolloutError as exc:
            raise rollout_rejection(exc) from None
        return Contribution(0, message.policy_version, rollout.num_steps, rollout=rollout,
                            episodes=(rollout.episode_returns, rollout.episode_lengths))

    def _check_gradient(self, message: pb.Gradient) -> Contribution:
        self._check_version(message.policy_version)
        try:
            grads = codec.decode_named(message.grads, "grads")
        except codec.CodecError as exc:
            raise Rejection(INVALID, Reason.INVALID_TENSOR, str(exc)) from None
        try:
            returns, lengths = episodes_from_proto(message.episodes)
        except RolloutError as exc:
            raise rollout_rejection(exc) from None
        if set(grads) != set(self.param_shapes):
            unknown, missing = set(grads) - set(self.param_shapes), set(self.param_shapes) - set(grads)
            raise Rejection(
                INVALID, Reason.UNKNOWN_PARAMETER, f"gradients: unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        for name, array in grads.items():
            if array.shape != self.param_shapes[name] or array.dtype != np.float32:
                raise Rejection(
                    INVALID,
                    Reason.SPACE_MISMATCH,
                    f"grads[{name}]: {array.dtype.name}{list(array.shape)}, "
                    f"expected float32{list(self.param_shapes[name])}",
                )
            if not np.all(np.isfinite(array)):
                raise Rejection(INVALID, Reason.NON_FINITE, f"grads[{name}] contains NaN or Inf")
        if message.env_steps > 1 << 24:
            raise Rejection(INVALID, Reason.MALFORMED, f"env_steps {message.env_steps} is implausible")
        self.metrics.loss.labels("policy").set(message.policy_loss)
        self.metrics.loss.labels("value").set(message.value_loss)
        self.metrics.loss.labels("entropy").set(message.entropy)
        return Contribution(0, message.policy_version, int(message.env_steps), grads=grads, episodes=(returns, lengths))

    def _count_episodes(self, env_steps: int, returns: np.ndarray, lengths: np.ndarray) -> None:
        self.metrics.env_steps.inc(env_steps)
        self.metrics.episodes.inc(len(returns))
        for value, length in zip(returns.tolist(), lengths.tolist()):
            self.metrics.episode_return.observe(value)
            self.metrics.episode_length.observe(length)
        mean = self.progress.mean_return()
        if mean is not None:
            self.metrics.mean_return.set(mean)
