"""What the wire costs: codec time per transition, weight-broadcast latency, message sizes."""

from __future__ import annotations

import statistics
import threading
import time

import numpy as np

from relayrl.rollout import Rollout
from relayrl.v1 import relayrl_pb2 as pb
from relayrl.wire import rollout_from_proto, rollout_to_proto
from relayrl_cli.bench.stats import summary

CARTPOLE_HIDDEN = (64, 64)
MILLION_HIDDEN = (700, 700)  # ~0.99M parameters over the policy and value MLPs


def cartpole_rollout(n_steps: int = 8, num_envs: int = 64) -> Rollout:
    rng = np.random.default_rng(0)
    shape = (n_steps, num_envs)
    done = rng.random(shape) < 0.05
    return Rollout(
        observations=rng.normal(size=(*shape, 4)).astype(np.float32),
        actions=rng.integers(0, 2, shape).astype(np.int64),
        rewards=np.ones(shape, np.float32),
        terminated=done,
        truncated=np.zeros(shape, bool),
        valid=np.ones(shape, bool),
        log_probs=np.full(shape, -0.69, np.float32),
        bootstrap_observations=rng.normal(size=(num_envs, 4)).astype(np.float32),
        policy_version=1,
    )


def codec_microseconds(repeats: int) -> dict:
    """Encode (to bytes) and decode (bytes to checked arrays) of a 64-env x 8-step CartPole rollout."""
    import gymnasium as gym

    rollout = cartpole_rollout()
    obs_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    act_space = gym.spaces.Discrete(2)
    transitions = rollout.rewards.size
    encode, decode = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        data = rollout_to_proto(rollout).SerializeToString()
        middle = time.perf_counter()
        rollout_from_proto(pb.Rollout.FromString(data), obs_space, act_space, 8)
        decode.append((time.perf_counter() - middle) * 1e6 / transitions)
        encode.append((middle - started) * 1e6 / transitions)
    return {"encode_us_per_transition": statistics.median(encode),
            "decode_us_per_transition": statistics.median(decode),
            "rollout_bytes_per_transition": len(data) / transitions}


def gradient_bytes(hidden_sizes: tuple[int, ...]) -> dict:
    import gymnasium as gym
    import torch

    from relayrl import codec
    from relayrl.model import ActorCritic

    model = ActorCritic(gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2), hidden_sizes)
    grads = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    message = pb.Gradient(policy_version=1, grads=codec.encode_named(grads), env_steps=512)
    return {"parameters": sum(p.numel() for p in model.parameters()), "gradient_message_bytes": message.ByteSize()}


def broadcast_latency(hidden_sizes: tuple[int, ...], repeats: int, env: str = "CartPole-v1") -> dict:
    """Milliseconds from the learner publishing a new version (weights encoded) to an actor having loaded
    it into its policy, through the real server, stream and actor code on loopback. An Atari ``env`` gives
    the Nature CNN (6.7 MB of weights)."""
    import grpc

    from actor_service.client import LearnerLink
    from actor_service.policies import TrajectoryPolicy
    from learner_service.config import LearnerConfig
    from learner_service.learner import Learner
    from relayrl import codec
    from relayrl.config import load

    config = load(LearnerConfig, ["--env", env, "--preset", "none", "--host", "127.0.0.1", "--port", "0",
                                  "--metrics-port", "-1", "--hidden-sizes", ",".join(map(str, hidden_sizes)),
                                  "--log-every", "3600"], environ={})
    learner = Learner(config)
    learner.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{learner.port}", options=[
        ("grpc.max_receive_message_length", config.max_message_bytes)])
    hello = pb.Hello(proto_version=pb.PROTO_VERSION_CURRENT, actor_id="bench", run_id="bench")
    link = LearnerLink(channel, hello, 10.0)
    welcome = link.welcome
    policy = TrajectoryPolicy(welcome.config, codec.decode_space(welcome.observation_space),
                              codec.decode_space(welcome.action_space), seed=0)
    stop = threading.Event()
    latencies = []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            version = learner.trainer.publish_new_version()
            weights = None
            while weights is None:
                weights = link.take_weights(version - 1, wait=5.0)
            policy.load(weights)
            latencies.append((time.perf_counter() - started) * 1e3)
    finally:
        stop.set()
        link.close(grace=0.5)
        channel.close()
        learner.stop.set()
        learner.shutdown(grace=0.5)
    _, weights_message = learner.board.snapshot()
    return {"milliseconds": summary(latencies), "weights_message_bytes": weights_message.ByteSize()}
