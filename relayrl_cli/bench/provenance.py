"""Where a results file came from: the code (git commit, uncommitted changes), the command, the machine
(cores, GPU, driver, torch and CUDA versions) and how busy it was, and when each part ran.

Every figure is only as good as this record: a number without the commit and the machine it was taken on
cannot be compared with the next one."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from relayrl_cli.run_folder import git_commit

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str]) -> str | None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=20, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code() -> dict:
    """The commit checked out and whether the tree differs from it. Where git cannot say (a copy of the tree
    without its history, as the lent GPU machine gets), the commit benchmarks/device_wheels.sh noted in
    .whl/COMMIT, marked so, and ``dirty`` None: unknown."""
    found = git_commit(ROOT)  # run.json's reading too: "<commit>" or "<commit>-dirty"
    if found is None and (ROOT / ".whl" / "COMMIT").is_file():
        noted = (ROOT / ".whl" / "COMMIT").read_text().strip() or None
        return {"git_commit": noted, "dirty": None, "commit_source": ".whl/COMMIT"}
    if found is None:
        return {"git_commit": None, "dirty": None, "commit_source": None}
    return {"git_commit": found.removesuffix("-dirty"), "dirty": found.endswith("-dirty"), "commit_source": "git"}


def nvidia_smi(fields: str) -> list[str] | None:
    """One row per GPU of ``nvidia-smi --query-gpu=FIELDS`` (None where nvidia-smi is absent or fails)."""
    out = _run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"])
    return out.splitlines() if out else None


def machine() -> dict:
    import torch

    gpu: dict = {"cuda_available": torch.cuda.is_available(), "cuda_runtime": torch.version.cuda}
    if gpu["cuda_available"]:
        gpu.update(name=torch.cuda.get_device_name(0), count=torch.cuda.device_count(),
                   memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
                   cudnn=torch.backends.cudnn.version())
    rows = nvidia_smi("driver_version")
    gpu["driver"] = rows[0].strip() if rows else None
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
            "torch": str(torch.__version__), "gpu": gpu}


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def record(argv: list[str] | None = None) -> dict:
    """The provenance block of a results file, at the start of a run; ``part`` adds each part's times."""
    return {**code(), "command": shlex.join(["relayrl", *(sys.argv[1:] if argv is None else argv)]),
            "machine": machine(), "started_at": time.time(), "load_average_at_start": load_average(), "parts": {}}


def part(provenance: dict, name: str, started: float) -> None:
    """Note that part ``name`` ran from ``started`` until now, and the load average when it ended."""
    provenance["parts"][name] = {"started_at": started, "ended_at": time.time(), "load_average_at_end": load_average()}


def finish(provenance: dict) -> None:
    provenance["ended_at"] = time.time()
    provenance["load_average_at_end"] = load_average()
