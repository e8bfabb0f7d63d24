"""`relayrl eval CHECKPOINT --episodes N [--video DIR]`: play the checkpoint's policy greedily, print mean and
std; with --video, also write MP4s of greedy episodes (headless: rgb_array rendering)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from relayrl.architecture import architecture
from relayrl.evaluation import play_greedy
from relayrl.model import ActorCritic, layout


def evaluate(
    model: ActorCritic, env_id: str, episodes: int, seed: int = 0, env_kwargs: dict[str, Any] | None = None
) -> np.ndarray:
    """Returns of the first episode of each of ``episodes`` parallel envs (unbiased: no early-finisher bias)."""
    return play_greedy(model, env_id, episodes, seed, env_kwargs)[0]


def load_policy(checkpoint_path: str | os.PathLike) -> tuple[ActorCritic, str]:
    """The model a learner checkpoint (or best.pt) holds, ready to act, and its environment id: the one place
    that builds a policy from a checkpoint (`relayrl eval`, `relayrl export` and the learning benchmark).
    Raises OSError or RuntimeError when the file cannot be read."""
    model, env_id, _ = load_policy_and_env(checkpoint_path)
    return model, env_id


def load_policy_and_env(checkpoint_path: str | os.PathLike) -> tuple[ActorCritic, str, dict[str, Any]]:
    """``load_policy``, and the keyword arguments the run made its env with (--env-kwargs)."""
    from learner_service.checkpoints import load
    from relayrl.envs import env_kwargs, single_spaces

    state = load(checkpoint_path)
    kwargs = env_kwargs(state.get("env_kwargs") or "")
    obs_space, act_space = single_spaces(state["env"], kwargs)
    model = ActorCritic(obs_space, act_space, **architecture(state), **layout(state["model"]))
    model.load_state_dict(state["model"])
    model.eval()
    return model, state["env"], kwargs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relayrl eval", description=__doc__)
    parser.add_argument("checkpoint", help="a ckpt-*.pt file written by the learner, or a run's best.pt")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to play [default: 10]")
    parser.add_argument("--seed", type=int, default=0, help="environment seed [default: 0]")
    parser.add_argument(
        "--video",
        metavar="DIR",
        help="also write MP4s of --video-episodes greedy episodes into DIR (needs relayrl[video]: moviepy)",
    )
    parser.add_argument("--video-episodes", type=int, default=1, help="episodes to record with --video [default: 1]")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    if args.video_episodes < 1:
        parser.error("--video-episodes must be at least 1")
    try:
        model, env_id, kwargs = load_policy_and_env(args.checkpoint)
    except (OSError, RuntimeError) as exc:
        print(f"relayrl eval: cannot read {args.checkpoint}: {exc}", file=sys.stderr)
        return 1
    if args.video is not None:
        from relayrl.video import video_support

        if (missing := video_support(env_id)) is not None:
            parser.error(f"--video: {missing}")
    returns = evaluate(model, env_id, args.episodes, args.seed, kwargs)
    print(
        f"{env_id} {Path(args.checkpoint).name}: mean return {returns.mean():.2f} "
        f"+/- {returns.std():.2f} over {args.episodes} greedy episodes"
    )
    if args.video is not None:
        from relayrl.video import record_greedy

        name = Path(args.checkpoint).stem
        for path in record_greedy(model, env_id, args.video, args.video_episodes, args.seed, name, kwargs):
            print(f"video: {path}")
    return 0
