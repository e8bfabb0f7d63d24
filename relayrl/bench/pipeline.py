"""`relayrl train` as users run it (separate processes, gRPC on loopback), measured from outside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train(args: list[str], timeout: float) -> dict:
    """Run `relayrl train ARGS` in a fresh run folder; returns its summary.json plus the wall time from
    launching the command to the moment the learner decided to stop (``wall_seconds``)."""
    with tempfile.TemporaryDirectory(prefix="relayrl-bench-") as run_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_")}
        launched = time.time()
        result = subprocess.run(
            [sys.executable, "-m", "relayrl.cli", "train", "--run-dir", run_dir, "--log-every", "3600", *args],
            capture_output=True, text=True, timeout=timeout, env=env,
        )
        path = Path(run_dir, "summary.json")
        if result.returncode != 0 or not path.exists():
            raise RuntimeError(f"relayrl train {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
        summary = json.loads(path.read_text())
    summary["wall_seconds"] = summary["finished_at"] - launched
    summary.pop("curve", None)
    summary.pop("config", None)
    return summary


def throughput(
    algo: str, transport: str, actors: int, env_steps: int, seed: int, timeout: float, extra: list[str] | None = None
) -> dict:
    """Env steps per second for a fixed budget (no target: learning quality does not stop it early)."""
    s = train(["--algo", algo, "--transport", transport, "--actors", str(actors), "--max-env-steps",
               str(env_steps), "--seed", str(seed), *(extra or [])], timeout)
    return {k: s[k] for k in ("env_steps", "steady_steps_per_second", "steps_per_second", "updates_per_second",
                              "samples_per_second", "mean_policy_lag", "training_seconds", "wall_seconds")}


def time_to_solve(target: float, seed: int, max_seconds: float, extra: list[str] | None = None) -> dict:
    """Wall seconds from launching `relayrl train` (default configuration) to a mean return of ``target``."""
    s = train(["--target-return", str(target), "--max-seconds", str(max_seconds), "--seed", str(seed),
               *(extra or [])], max_seconds + 120)
    return {"solved": s["solved"], "wall_seconds": s["wall_seconds"], "env_steps": s["env_steps"],
            "updates": s["updates"], "mean_return": s["mean_return"]}
