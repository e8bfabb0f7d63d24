"""What a model is built from, in one place, torch-free: the settings that name its architecture and the
layer sizes of its policy and value networks (SB3's ``net_arch``).

Every side builds the same network from these: the learner from its config, actors from the RunConfig they are
sent, eval and export from a checkpoint. ``architecture(settings)`` reads them from any of those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relayrl.envs import env_kwargs

# The settings that name a model's architecture (its weights' layout follows from these and the spaces).
DEFAULTS: dict[str, Any] = {
    "hidden_sizes": (64, 64),
    "activation": "tanh",
    "net_arch": "",
    "cnn": "auto",
    "features_extractor": "",
    "features_kwargs": "",
}
CNNS = ("auto", "nature", "small", "impala")


def architecture(settings: Any) -> dict[str, Any]:
    """The architecture settings held by ``settings`` (a config object, a RunConfig message or a checkpoint's
    dict); what it lacks (older checkpoints, a RunConfig field left empty) takes its default."""
    out = {}
    for name, default in DEFAULTS.items():
        value = settings.get(name) if isinstance(settings, Mapping) else getattr(settings, name, None)
        if value is None or (name == "cnn" and value == ""):
            value = default
        out[name] = tuple(int(h) for h in value) if name == "hidden_sizes" else value
    return out


@dataclass(frozen=True)
class NetArch:
    """Hidden layers: ``shared`` read by both heads (a trunk over the features), then ``pi`` for the policy and
    ``vf`` for the value net, each ending in its own output layer."""

    shared: tuple[int, ...]
    pi: tuple[int, ...]
    vf: tuple[int, ...]


def parse_net_arch(text: str, hidden_sizes: Sequence[int], linear_heads: bool = False) -> NetArch:
    """``text`` in SB3's dict form, "pi=64,64;vf=256,256" with optional "shared=..." (a missing key: no layers);
    empty: ``hidden_sizes`` for both heads, or none where ``linear_heads`` (a lone image: SB3's CnnPolicy reads
    the CNN's features with one linear layer per head). A ValueError says what is wrong."""
    if not text.strip():
        sizes = () if linear_heads else tuple(hidden_sizes)
        return NetArch((), sizes, sizes)
    layers: dict[str, tuple[int, ...]] = {}
    for part in text.replace(" ", "").split(";"):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or key not in ("shared", "pi", "vf"):
            raise ValueError(f"{part!r}: expected shared=..., pi=... or vf=... (e.g. 'pi=64,64;vf=256,256')")
        if key in layers:
            raise ValueError(f"{key} given twice")
        try:
            sizes = tuple(int(v) for v in value.split(",") if v)
        except ValueError:
            raise ValueError(f"{part!r}: sizes must be integers") from None
        if any(s <= 0 for s in sizes):
            raise ValueError(f"{part!r}: sizes must be positive")
        layers[key] = sizes
    return NetArch(layers.get("shared", ()), layers.get("pi", ()), layers.get("vf", ()))


def features_kwargs(text: str) -> dict[str, Any]:
    """A features extractor's keyword arguments from their JSON form; a ValueError when not a JSON object."""
    return env_kwargs(text)  # the same form as the env's keyword arguments
