"""What a run reports when it ends: summary.json in --run-dir (read by relayrl train, plot and the benchmarks)."""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import grpc
import gymnasium as gym
import torch

from learner_service.config import LearnerConfig
from learner_service.progress import Progress
from relayrl import __version__
from relayrl.config import redacted


def run_summary(
    config: LearnerConfig,
    progress: Progress,
    policy_version: int,
    peak_actors: int,
    stop_reason: str,
    final_return: float | None,
) -> dict:
    """The run's outcome, counters, rates, configuration (secrets redacted), versions and learning curve.
    ``final_return``: the mean return a stop criterion was met on (None: the current one)."""
    p = progress
    wall = p.elapsed()
    with p.lock:
        own_steps, resumed_steps = p.own("env_steps"), p.baseline.get("env_steps", 0)
        first = list(p.first_returns)
    mean = final_return if final_return is not None else p.mean_return()
    return {
        "env": config.env,
        "algo": config.algo,
        "transport": config.transport,
        "actors": peak_actors,
        "peak_actors_connected": peak_actors,
        "solved": stop_reason == "solved",
        "stop_reason": stop_reason,
        "env_steps": p.env_steps,
        "wall_seconds": round(wall, 3),
        "mean_return": mean,
        "first_return100": statistics.fmean(first) if first else None,  # the first 100 episodes' mean
        "episodes": p.episodes,
        "updates": p.updates,
        "samples": p.samples,
        "policy_version": policy_version,
        "dropped_stale": p.dropped,  # contributions dropped as too stale (A3C), this process
        "resumed_env_steps": resumed_steps,  # env_steps at --resume; rates count only this process's own
        "steps_per_second": round(own_steps / wall, 1) if wall > 0 else 0.0,
        **p.rates(),
        "config": redacted(config),
        "versions": {
            "relayrl": __version__,
            "torch": str(torch.__version__),
            "gymnasium": gym.__version__,
            "grpc": grpc.__version__,
            "python": sys.version.split()[0],
        },
        "curve": p.curve,
    }


def write_summary(run_dir: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as RUN_DIR/summary.json, atomically (a reader never sees half a file)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
    return path
