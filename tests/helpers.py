"""Small builders shared by tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from relayrl.rollout import Rollout

CARTPOLE_OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
CARTPOLE_ACT = gym.spaces.Discrete(2)


def random_rollout(
    T: int = 5, N: int = 3, obs_dim: int = 4, n_actions: int = 2, seed: int = 0, version: int = 0
) -> Rollout:
    rng = np.random.default_rng(seed)
    terminated = rng.random((T, N)) < 0.2
    truncated = (rng.random((T, N)) < 0.1) & ~terminated
    valid = np.ones((T, N), bool)
    valid[1:] = ~(terminated | truncated)[:-1]  # next-step autoreset after every episode end
    return Rollout(
        observations=rng.normal(size=(T, N, obs_dim)).astype(np.float32),
        actions=rng.integers(0, n_actions, size=(T, N)).astype(np.int64),
        rewards=rng.normal(size=(T, N)).astype(np.float32),
        terminated=terminated,
        truncated=truncated,
        valid=valid,
        log_probs=np.full((T, N), -0.69, np.float32),
        bootstrap_observations=rng.normal(size=(N, obs_dim)).astype(np.float32),
        policy_version=version,
        episode_returns=np.array([10.0, 12.0], np.float32),
        episode_lengths=np.array([10, 12], np.uint32),
    )


class RawActor:
    """A hand-driven actor stream for tests: send any message, read what the learner answers."""

    def __init__(self, address: str, actor_id: str = "raw", run_id: str | None = None, hello=None) -> None:
        import queue
        import uuid

        import grpc

        from relayrl.v1 import relayrl_pb2 as pb
        from relayrl.v1 import relayrl_pb2_grpc as pb_grpc

        self.channel = grpc.insecure_channel(address)
        self._queue: queue.Queue = queue.Queue()
        if hello is None:
            hello = pb.Hello(
                proto_version=pb.PROTO_VERSION_CURRENT, actor_id=actor_id, run_id=run_id or uuid.uuid4().hex
            )
        self._queue.put(pb.ActorMessage(hello=hello) if isinstance(hello, pb.Hello) else hello)
        self.call = pb_grpc.LearnerStub(self.channel).Connect(iter(self._queue.get, None))

    def receive(self):
        return next(self.call)

    def send(self, message) -> None:
        self._queue.put(message)

    def close(self) -> None:
        self._queue.put(None)
        self.call.cancel()
        self.channel.close()
