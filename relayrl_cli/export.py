"""`relayrl export CHECKPOINT --format onnx|torchscript --out FILE`: the policy of a checkpoint (or best.pt) as
one file to serve, with the run's observation normalisation inside it.

The file maps a batch of raw observations (as they travel: float32 vectors, uint8 or bool images, int64
Discrete values; a Dict observation as one named input per key) to three outputs: ``action``, the greedy
action (the most likely one for each categorical or bit, the Gaussian's mean for Box ones, unclipped);
``log_prob``, its log-probability under the policy; and ``value``, the critic's estimate. It is built on
ActorCritic's public ``act(obs, greedy=True)`` and ``value(obs)``, the same calls actors and `relayrl eval`
make, so whatever network the run used (MLP or CNN) exports the same way; normalisation is part of both calls.
Clip Box actions to the action space's bounds before stepping an env, as RelayRL does.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from relayrl.model import ActorCritic
from relayrl.spaces import as_wire, parts
from relayrl_cli.evaluate import load_policy_and_env

OUTPUTS = ("action", "log_prob", "value")
OPSET = 17


class ServedPolicy(nn.Module):
    """observation -> (greedy action, its log-probability, value): what a served policy needs. A Dict
    observation comes as one input per key, in the space's key order."""

    def __init__(self, model: ActorCritic, keys: Sequence[str] = ()) -> None:
        super().__init__()
        self.model = model.eval()
        self.keys = list(keys)

    def forward(self, *observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        obs = dict(zip(self.keys, observation)) if self.keys else observation[0]
        action, log_prob = self.model.act(obs, greedy=True)
        return action, log_prob, self.model.value(obs)


def example_batch(observation_space, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """A batch shaped and typed as observations travel (one tensor per key of a Dict), to trace the model with."""
    samples = [observation_space.sample() for _ in range(batch)]
    subspaces = parts(observation_space)
    if subspaces is None:
        return (torch.as_tensor(as_wire(observation_space, np.stack(samples))),)
    stacked = {key: np.stack([s[key] for s in samples]) for key in subspaces}
    return tuple(torch.as_tensor(a) for a in as_wire(observation_space, stacked).values())


def export(checkpoint: str, fmt: str, out: str | Path) -> Path:
    """Write the checkpoint's policy as ``fmt`` (onnx or torchscript) to ``out``; returns the path."""
    from relayrl.envs import single_spaces

    model, env_id, kwargs = load_policy_and_env(checkpoint)
    observation_space, action_space = single_spaces(env_id, kwargs)
    keys = list(parts(observation_space) or ())
    served = ServedPolicy(model, keys)
    example = example_batch(observation_space)
    inputs = keys or ["observation"]
    info = {
        "env": env_id,
        "env_kwargs": json.dumps(kwargs),
        "inputs": json.dumps(inputs),
        "observation_shape": json.dumps([list(e.shape[1:]) for e in example] if keys else list(example[0].shape[1:])),
        "observation_dtype": json.dumps([str(e.dtype).removeprefix("torch.") for e in example] if keys
                                        else str(example[0].dtype).removeprefix("torch.")),
        "action_space": str(action_space),
        "outputs": "action (greedy), log_prob, value",
        "checkpoint": Path(checkpoint).name,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about Python branches taken once (discrete or not)
        if fmt == "torchscript":
            traced = torch.jit.trace(served, example)
            traced.save(str(out), _extra_files={"relayrl.json": json.dumps(info)})
        else:
            # The TorchScript-based exporter: quick, and enough for these graphs (torch is pinned).
            torch.onnx.export(
                served,
                example,
                str(out),
                input_names=inputs,
                output_names=list(OUTPUTS),
                dynamic_axes={name: {0: "batch"} for name in (*inputs, *OUTPUTS)},
                opset_version=OPSET,
                dynamo=False,
            )
            import onnx

            proto = onnx.load(str(out))
            for key, value in info.items():
                proto.metadata_props.add(key=key, value=value)
            onnx.checker.check_model(proto)
            onnx.save(proto, str(out))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="relayrl export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", help="a ckpt-*.pt file written by the learner, or a run's best.pt")
    parser.add_argument(
        "--format",
        required=True,
        choices=("onnx", "torchscript"),
        help="onnx (for onnxruntime and other runtimes; needs relayrl[export]) or torchscript (torch.jit.load)",
    )
    parser.add_argument("--out", required=True, help="the file to write, e.g. policy.onnx or policy.pt")
    args = parser.parse_args(argv)
    if args.format == "onnx":
        try:
            import onnx  # noqa: F401
        except ImportError:
            parser.error("--format onnx needs onnx: pip install 'relayrl[export]'")
    try:
        path = export(args.checkpoint, args.format, args.out)
    except (OSError, RuntimeError) as exc:
        print(f"relayrl export: cannot export {args.checkpoint}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.format}: {path} (inputs: observation [batch, ...], or one per key of a Dict; "
          f"outputs: {', '.join(OUTPUTS)})")
    return 0
