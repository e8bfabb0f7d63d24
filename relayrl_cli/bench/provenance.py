"""Where a benchmark result came from, recorded with it: the code (git commit, and whether the tree
differed from it), the exact command, the machine and its load, and when each run started and ended.

Every suite's results file carries a ``provenance`` block for the invocation that wrote it (``invocation``),
and every run in it a ``run`` stamp (``timed``): the resumable suites (learning, hold) merge runs from
several invocations into one file, so each run keeps its own commit and command. tests/unit/
test_results_provenance.py fails on a committed results file without them, or whose commit is not in
HEAD's history; files measured before this existed are listed, with the reason, in
benchmarks/results/legacy.toml.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
STARTED = time.time()  # when the bench command started (it imports this first thing): the invocation's start
# Results are written into the tree while suites run: changes there do not make the code dirty.
RESULTS = "benchmarks/results"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code() -> dict[str, Any]:
    """The commit the code was run from and whether the tree differed from it (results folder aside);
    both None when this is not a git checkout (an installed package): such results cannot be traced."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--", ".", f":(exclude){RESULTS}")
    return {"commit": commit, "dirty": None if commit is None or status is None else bool(status)}


def command() -> str:
    """The command line as typed (python -m relayrl_cli ... or the relayrl script), shell-quoted."""
    argv = list(sys.argv)
    if not argv:
        return ""
    rest = shlex.join(argv[1:])
    if argv[0].endswith("__main__.py"):
        return f"{Path(sys.executable).name} -m relayrl_cli {rest}"
    return f"{shlex.quote(Path(argv[0]).name)} {rest}"


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages: other work on the machine slows a timed run, so say how much."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    import torch

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
            "torch": str(torch.__version__), "torch_threads_benchmark_process": torch.get_num_threads(),
            "torch_threads_services": 1, "hostname": platform.node()}


def invocation() -> dict[str, Any]:
    """The block a results file carries for the invocation that wrote it; taken when the file is written,
    so ``finished_at`` is then (a resumable suite rewrites it after every run)."""
    return {**code(), "command": command(), "machine": machine(), "started_at": STARTED,
            "finished_at": time.time(), "load_average_at_end": load_average()}


def timed(measure: Callable[..., dict], *args: Any, **kwargs: Any) -> dict:
    """``measure(*args, **kwargs)``, one run; its result with a ``run`` stamp: commit, command, start and end,
    the load average at both."""
    started, load_before = time.time(), load_average()
    result = measure(*args, **kwargs)
    return {**result, "run": stamp_since(started, load_before)}


def stamp_since(started: float, load_before: list[float]) -> dict[str, Any]:
    """The ``run`` stamp of a run that began at ``started`` (time.time()) under ``load_before`` and ends now."""
    return {**code(), "command": command(), "started_at": started, "finished_at": time.time(),
            "load_average_at_start": load_before, "load_average_at_end": load_average()}
