"""`relayrl train` as users run it (separate processes, gRPC on loopback), measured from outside."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relayrl_cli.bench.solve import solve_points


def run_group(args: list[str], timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """subprocess.run in a process group of its own: on timeout (or Ctrl-C) the whole group is killed
    (`relayrl train`'s learner and actors too, not only the command), then the exception goes on."""
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def train(args: list[str], timeout: float, log_every: float = 3600.0, keep_curve: bool = False,
          run_dir: str | None = None, keep_config: bool = False) -> dict:
    """Run `relayrl train ARGS` in a fresh run folder (``run_dir``, else a temporary one); returns its
    summary.json plus the wall time from launching the command to the moment the learner decided to stop
    (``wall_seconds``). With ``keep_curve``, "curve" holds the learner's rows (one per ``log_every``
    seconds) as [seconds since the launch, env_steps, return100]; with ``keep_config``, "config" holds the
    learner's resolved configuration."""
    with tempfile.TemporaryDirectory(prefix="relayrl-bench-") as tmp:
        run_dir = run_dir or tmp
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_")}
        launched = time.time()
        result = run_group([sys.executable, "-m", "relayrl_cli", "train", "--run-dir", run_dir, "--log-every",
                            str(log_every), *args], timeout, env)
        path = Path(run_dir, "summary.json")
        if result.returncode != 0 or not path.exists():
            raise RuntimeError(f"relayrl train {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
        summary = json.loads(path.read_text())
    summary["wall_seconds"] = summary["finished_at"] - launched
    curve = summary.pop("curve", None) or []
    if keep_curve:
        # Curve rows count from the learner's start. The learner appends its last row just before taking
        # finished_at (milliseconds apart), which places the learner's start on the launch's clock.
        offset = summary["wall_seconds"] - curve[-1][0] if curve else 0.0
        summary["curve"] = [[offset + row[0], row[1], row[2]] for row in curve]
    if not keep_config:
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


def solve_run(target: float, seed: int, max_env_steps: int, max_seconds: float, extra: list[str] | None = None,
              log_every: float = 0.2) -> dict:
    """`relayrl train` (default configuration) for a fixed budget, past its first crossing of ``target``:
    the first crossing and the held solve (relayrl_cli.bench.solve) with their wall seconds from the launch."""
    s = train(["--max-env-steps", str(max_env_steps), "--max-seconds", str(max_seconds), "--seed", str(seed),
               *(extra or [])], max_seconds + 120, log_every=log_every, keep_curve=True)
    return {**solve_points(s["curve"], target), "env_steps_run": s["env_steps"], "wall_seconds_run": s["wall_seconds"],
            "final_return100": s["mean_return"], "curve_rows": len(s["curve"])}
