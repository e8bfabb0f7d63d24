"""Per-environment hyperparameters, shipped as data like rl-baselines3-zoo's hyperparameter files.

One TOML file per environment family (classic_control.toml, box2d.toml, mujoco.toml, atari.toml); each
table ``[ENV_ID.ALGO]`` holds values for fields of ``relayrl train``'s configuration, by their field names
(``n_steps``, ``lr``, ``num_envs``...). ``--preset auto`` (the default) takes the entry for ``--env`` and
``--algo`` when there is one; flags and RELAYRL_* variables override any value in it. An ENV_ID may be a
shell-style pattern (``"MinAtar/*"``), or several separated by ``|`` for one family's ids in all their forms
(``"ALE/* | *NoFrameskip-v4"``): an env's own entry comes first, then the first entry with a pattern that
matches. An env given as ``module:EnvId`` takes the entry of ``EnvId`` when it has none of its own.
"""

from __future__ import annotations

import fnmatch
import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRESET_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Preset:
    env: str
    algo: str
    source: str  # the file it came from, e.g. "classic_control.toml"
    values: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.env}/{self.algo}"


class PresetError(ValueError):
    """A preset file is malformed, or a requested preset does not exist."""


@functools.cache
def all_presets() -> dict[tuple[str, str], Preset]:
    """Every (env id, algo) entry of every preset file; an env listed in two files is an error."""
    found: dict[tuple[str, str], Preset] = {}
    for path in sorted(PRESET_DIR.glob("*.toml")):
        with path.open("rb") as f:
            data = tomllib.load(f)
        for env, algos in data.items():
            for algo, values in algos.items():
                if not isinstance(values, dict):
                    raise PresetError(f"{path.name}: [{env}.{algo}] is not a table")
                if (env, algo) in found:
                    raise PresetError(f"{path.name}: {env}/{algo} is also in {found[env, algo].source}")
                found[env, algo] = Preset(env, algo, path.name, dict(values))
    return found


def resolve(choice: str, env: str, algo: str) -> Preset | None:
    """The preset a run uses: ``choice`` is "auto" (the env's own, if any), "none", or an env id."""
    if choice == "none":
        return None
    wanted = env if choice == "auto" else choice
    bare = wanted.rpartition(":")[2]  # "highway_env:highway-fast-v0" takes highway-fast-v0's entry
    preset = all_presets().get((wanted, algo)) or all_presets().get((bare, algo))
    if preset is None:
        patterns = [p for (e, a), p in all_presets().items() if a == algo and matches(bare, e)]
        preset = patterns[0] if patterns else None
    if preset is None and choice != "auto":
        known = sorted({e for e, a in all_presets() if a == algo})
        raise PresetError(f"no {algo} preset for {choice!r}; there are: {', '.join(known)}")
    return preset


def matches(env: str, key: str) -> bool:
    """Whether ``env`` is one of the ids a preset's ENV_ID names: itself, or any of its ``|``-separated
    shell-style patterns, each matched against the whole id."""
    return any(fnmatch.fnmatchcase(env, pattern.strip()) for pattern in key.split("|"))
