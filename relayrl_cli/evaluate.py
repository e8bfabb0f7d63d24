"""`relayrl eval CHECKPOINT --episodes N`: play the checkpoint's policy greedily, print mean and std."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from relayrl.envs import env_action, make_vector_env
from relayrl.model import ActorCritic, layout


@torch.inference_mode()
def evaluate(model: ActorCritic, env_id: str, episodes: int, seed: int = 0) -> np.ndarray:
    """Returns of the first episode of each of ``episodes`` parallel envs (unbiased: no early-finisher bias)."""
    env = make_vector_env(env_id, episodes)
    try:
        obs, _ = env.reset(seed=seed)
        returns = np.zeros(episodes)
        running = np.ones(episodes, bool)
        while running.any():
            actions, _ = model.act(torch.as_tensor(obs, dtype=torch.float32), greedy=True)
            obs, reward, terminated, truncated, _ = env.step(env_action(actions.numpy(), env.single_action_space))
            returns += np.where(running, reward, 0.0)
            running &= ~(terminated | truncated)
        return returns
    finally:
        env.close()


def load_policy(checkpoint_path: str | os.PathLike) -> tuple[ActorCritic, str]:
    """The model a learner checkpoint holds, ready to act, and its environment id: the one place that
    builds a policy from a checkpoint (`relayrl eval` and the learning benchmark). Raises OSError or
    RuntimeError when the file cannot be read."""
    from learner_service.checkpoints import load
    from relayrl.envs import single_spaces

    state = load(checkpoint_path)
    obs_space, act_space = single_spaces(state["env"])
    model = ActorCritic(
        obs_space, act_space, tuple(state["hidden_sizes"]), state.get("activation", "tanh"), **layout(state["model"])
    )
    model.load_state_dict(state["model"])
    model.eval()
    return model, state["env"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relayrl eval", description=__doc__)
    parser.add_argument("checkpoint", help="a ckpt-*.pt file written by the learner")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to play [default: 10]")
    parser.add_argument("--seed", type=int, default=0, help="environment seed [default: 0]")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    try:
        model, env_id = load_policy(args.checkpoint)
    except (OSError, RuntimeError) as exc:
        print(f"relayrl eval: cannot read {args.checkpoint}: {exc}", file=sys.stderr)
        return 1
    returns = evaluate(model, env_id, args.episodes, args.seed)
    print(
        f"{env_id} {Path(args.checkpoint).name}: mean return {returns.mean():.2f} "
        f"+/- {returns.std():.2f} over {args.episodes} greedy episodes"
    )
    return 0
