"""Where a benchmark result came from, recorded with it: the code (git commit, and whether the tree differed
from it), the exact command, the machine and its load, and when the invocation started and ended.

A minimal form of the helper issue 22 adds (same names: ``code``, ``command``, ``load_average``, ``machine``,
``invocation``), so that the suites here call what either provides."""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from relayrl_cli.run_folder import git_commit

REPO = Path(__file__).resolve().parents[2]
STARTED = time.time()  # when the bench command started (it imports this early): the invocation's start


def code() -> dict[str, Any]:
    """The commit the code was run from and whether the tree differed from it; both None outside git."""
    found = git_commit(REPO)  # run.json's reading too: "<commit>" or "<commit>-dirty"
    if found is None:
        return {"commit": None, "dirty": None}
    return {"commit": found.removesuffix("-dirty"), "dirty": found.endswith("-dirty")}


def command() -> str:
    """The command line as typed (python -m relayrl_cli ... or the relayrl script), shell-quoted."""
    argv = list(sys.argv)
    if argv and argv[0].endswith("__main__.py"):
        argv[0] = f"{Path(sys.executable).name} -m relayrl_cli"
    elif argv:
        argv[0] = Path(argv[0]).name
    return shlex.join(argv)


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages: other work on the machine slows a timed run, so say how much."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    import torch

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
            "torch": str(torch.__version__), "hostname": platform.node()}


def invocation() -> dict[str, Any]:
    """The block a results file carries for the invocation that wrote it, taken when the file is written."""
    return {**code(), "command": command(), "machine": machine(), "started_at": STARTED,
            "finished_at": time.time(), "load_average_at_end": load_average()}
