"""Checkpoints: model, optimizer, policy version and counters, written atomically, newest K kept.

A checkpoint is a local file the learner wrote itself; it is loaded with ``weights_only=True`` so even a
tampered file cannot run code. A file that fails to load is reported and skipped for the next older one.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

PATTERN = re.compile(r"^ckpt-(\d{12})\.pt$")


def checkpoint_path(directory: Path, version: int) -> Path:
    return directory / f"ckpt-{version:012d}.pt"


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Checkpoint files in ``directory``, newest (highest version) first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if PATTERN.match(p.name)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def save(directory: str | os.PathLike, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` as the checkpoint of state['version'] via temp file + fsync + rename; prune to ``keep``."""
    directory = Path(directory)
    target = save_file(checkpoint_path(directory, int(state["version"])), state)
    for old in list_checkpoints(directory)[keep:]:
        old.unlink(missing_ok=True)
    return target


def save_file(target: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``target`` via temp file + fsync + rename: a reader sees the old file or the new one."""
    target = Path(target)
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
    return target


def saved_optimizer(state: dict) -> str:
    """The optimizer a checkpoint was written with: recorded since checkpoints carry "optimizer_name",
    recognised by its state's tensors before that."""
    if "optimizer_name" in state:
        return str(state["optimizer_name"])
    per_param = state.get("optimizer", {}).get("state") or [{}]
    return "rmsprop" if "square_avg" in per_param[0] else "adam" if "m" in per_param[0] else "unknown"


def load(path: str | os.PathLike) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def load_latest(directory: str | os.PathLike, broken: list[Path] | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; broken ones are logged, skipped (never deleted) and, when given
    a list, appended to ``broken``."""
    for path in list_checkpoints(directory):
        try:
            state = load(path)
            if not isinstance(state, dict) or "model" not in state or "version" not in state:
                raise ValueError("not a RelayRL checkpoint")
            return path, state
        except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped the same way
            log.error("checkpoint %s is unreadable (%s); trying an older one", path, exc)
            if broken is not None:
                broken.append(path)
    return None


def resume_from(directory: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """``load_latest`` for a learner about to write checkpoints into ``directory`` again.

    Broken checkpoints are renamed to NAME.unreadable (kept for inspection): left in place, a broken file
    with a higher version than the one resumed would stay "newest", and pruning to --keep-checkpoints
    would delete the good checkpoints written after it. Temp files of a write that was killed half-way
    are removed (they never replaced a checkpoint: the rename is the last step).
    """
    directory = Path(directory)
    if directory.is_dir():
        for tmp in directory.glob(".tmp-*.pt"):
            log.warning("removing %s, left by a checkpoint write that did not finish", tmp)
            tmp.unlink(missing_ok=True)
    broken: list[Path] = []
    found = load_latest(directory, broken)
    for path in broken:
        aside = path.with_name(path.name + ".unreadable")
        os.replace(path, aside)
        log.error("set %s aside as %s", path.name, aside.name)
    return found
