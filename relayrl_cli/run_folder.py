"""A run folder that explains itself: config.json (the resolved configuration, which `relayrl train --config
FILE` reads back to repeat the run) and run.json (the command line, seed, versions and git commit)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from relayrl import __version__
from relayrl.config import REDACTED, ConfigError, env_name, redacted

# Not repeated from a config file: where the old run lived (a repeat gets its own folder), how it was
# started, and secrets (never written in the first place).
NOT_REPEATED = (
    "run_dir", "checkpoint_dir", "config", "resume", "resume_finished", "port", "metrics_port", "auth_token",
    "auth_token_file",
)


def write_config(run_dir: Path, config: Any) -> Path:
    """RUN_DIR/config.json: every option's resolved value (preset, variables and flags merged), secrets
    redacted."""
    path = run_dir / "config.json"
    path.write_text(json.dumps(redacted(config), indent=2))
    return path


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """Option values from a config.json (or a YAML file of the same keys) to repeat a run with."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml  # pyyaml, only for YAML files

            values = yaml.safe_load(text)
        else:
            values = json.loads(text)
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"--config: {path} is not a readable configuration: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"--config: {path} holds no table of options")
    return {k: v for k, v in values.items() if k not in NOT_REPEATED and v != REDACTED}


def as_environ(values: Mapping[str, Any]) -> dict[str, str]:
    """Config values as RELAYRL_* variables: below flags and the real variables, above presets."""
    out = {}
    for key, value in values.items():
        if value is None:
            text = "none"
        elif isinstance(value, (list, tuple)):
            text = ",".join(map(str, value))
        else:
            text = str(value)
        out[env_name(key)] = text
    return out


def git_commit(where: Path) -> str | None:
    """The commit of the checkout RelayRL runs from, with "-dirty" when it has changes; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def version_of(package: str) -> str | None:
    try:
        return metadata.version(package)  # without importing it: `relayrl train` does not load torch itself
    except metadata.PackageNotFoundError:
        return None


def write_run_info(run_dir: Path, argv: Sequence[str], seed: int, environ: Mapping[str, str]) -> Path:
    """RUN_DIR/run.json: how the run was started and with what software."""
    variables = {
        k: (REDACTED if k == env_name("auth_token") else v) for k, v in environ.items() if k.startswith("RELAYRL_")
    }
    info = {
        "command": shlex.join(["relayrl", "train", *argv]),
        "argv": list(argv),
        "environment": variables,
        "seed": seed,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "versions": {
            "relayrl": __version__,
            "torch": version_of("torch"),
            "gymnasium": version_of("gymnasium"),
            "grpcio": version_of("grpcio"),
            "python": sys.version.split()[0],
        },
        "git_commit": git_commit(Path(__file__).resolve().parent),
    }
    path = run_dir / "run.json"
    path.write_text(json.dumps(info, indent=2))
    return path
