"""Where a training batch crosses from host to device, and the weights back: the learner's only transfers.

To the device, once per update (``stage_rollouts``, relayrl.loss's ``gather`` hook, and ``stage``): on CUDA
every field of the batch is written straight into one page-locked (pinned) host buffer, each at an
8-byte-aligned offset, while the rollouts are concatenated (the concatenation is the only host copy), and
the buffer goes over in ONE ``non_blocking`` copy. The host does not wait for it: the forward pass is
queued behind the copy on the same stream. uint8 pixels travel as uint8 (a quarter of float32's bytes)
and are scaled on the device by the model. Pinned blocks come from torch's caching host allocator, which
hands a block out again only once the copies reading it have finished, so a fresh buffer per update is
safe without waiting on anything. On the CPU nothing is copied that need not be.

To the host, once per policy version (``host_state``): every tensor of the model's state packed into one
device buffer, copied once, and cut into named host tensors for the weights message.

Field values may be mappings of arrays (observations of Dict spaces): each array is staged the same way
and the mapping keeps its keys.

Where the host waits for the device (tests/gpu/ counts them with torch's sync debug mode):
- A2C, and A3C with trajectories: once per update, reading the loss diagnostics and the gradient norm in one
  copy (relayrl.loss.LossTerms.to_host): the norm decides whether the step is taken (a non-finite one is not);
- A3C with gradients: once per update, the gradient norm (the actor sent the diagnostics);
- once per policy version: the weights copied for the broadcast (which also waits for the step to finish);
- normalising runs only (MLP envs; no GPU benefit there): the running statistics are folded on the host, 3
  waits per rollout and 1 per update with --normalize-rewards, 3 per rollout with --normalize-observations
  (learner_service/statistics.py);
- checkpoints and evaluation snapshots, at their own intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from relayrl.loss import gather
from relayrl.rollout import Rollout

ALIGN = 8  # bytes: every field starts where its dtype (at most 8 bytes wide) may be viewed in place


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype)).dtype


def _plan(parts: Mapping[str, Any], axes: Mapping[str, int]) -> dict[str, Any]:
    """Per field (recursing into mappings): (list of host arrays, axis, result shape, dtype)."""
    plan: dict[str, Any] = {}
    for name, arrays in parts.items():
        if isinstance(arrays[0], Mapping):
            plan[name] = _plan({key: [a[key] for a in arrays] for key in arrays[0]},
                               {key: axes[name] for key in arrays[0]})
            continue
        axis = axes[name]
        shape = list(arrays[0].shape)
        shape[axis] = sum(a.shape[axis] for a in arrays)
        plan[name] = (arrays, axis, tuple(shape), np.result_type(*arrays))
    return plan


def _leaves(plan: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    out = []
    for item in plan.values():
        out.extend(_leaves(item) if isinstance(item, dict) else [item])
    return out


def pack(parts: Mapping[str, Any], axes: Mapping[str, int], device: torch.device) -> dict[str, Any]:
    """Concatenate each field's arrays (a list per name, batched along ``axes[name]``) into one host buffer,
    pinned for CUDA, copy it to ``device`` at once and view the fields there."""
    plan = _plan(parts, axes)
    offsets, total = {}, 0
    for leaf in _leaves(plan):
        _, _, shape, dtype = leaf
        offsets[id(leaf)] = total
        total += -(-int(np.prod(shape)) * dtype.itemsize // ALIGN) * ALIGN
    host = torch.empty(total, dtype=torch.uint8, pin_memory=device.type == "cuda")
    buffer = host.numpy()
    for leaf in _leaves(plan):
        arrays, axis, shape, dtype = leaf
        start = offsets[id(leaf)]
        out = buffer[start : start + int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)
        np.concatenate(arrays, axis=axis, out=out)
    staged = host.to(device, non_blocking=True)

    def view(item: Any) -> Any:
        if isinstance(item, dict):
            return {key: view(value) for key, value in item.items()}
        _, _, shape, dtype = item
        start = offsets[id(item)]
        return staged[start : start + int(np.prod(shape)) * dtype.itemsize].view(_torch_dtype(dtype)).view(shape)

    return view(plan)


def stage_rollouts(rollouts: Sequence[Rollout], fields: Mapping[str, int], device: torch.device) -> dict[str, Any]:
    """The loss's fields of ``rollouts`` (name -> the axis they are batched along) as tensors on ``device``."""
    if device.type != "cuda":
        return gather(rollouts, fields, device)
    return pack_rollouts(rollouts, fields, device)


def pack_rollouts(rollouts: Sequence[Rollout], fields: Mapping[str, int], device: torch.device) -> dict[str, Any]:
    """``stage_rollouts``' CUDA path on any device (the CPU runs it in tests and the device benchmark)."""
    return pack({name: [getattr(r, name) for r in rollouts] for name in fields}, fields, device)


def stage(arrays: Mapping[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    """Named host arrays (an actor's gradients) as tensors of their own on ``device``, in one copy on CUDA."""
    if device.type != "cuda":  # a copy: the wire's buffers are read-only and the tensors will be written
        return {name: torch.from_numpy(np.array(array)) for name, array in arrays.items()}
    return pack({name: [array] for name, array in arrays.items()}, dict.fromkeys(arrays, 0), device)


def host_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state on the host, for the weights message: on CUDA in one device-to-host copy."""
    state = model.state_dict()
    if all(t.device.type == "cpu" for t in state.values()):
        return state
    return packed_to_host(state)


def packed_to_host(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state``'s tensors packed into one buffer where they are, copied to the host at once, and cut up."""
    flat = [t.detach().contiguous().reshape(-1).view(torch.uint8) for t in state.values()]
    padded = []
    for raw in flat:  # each tensor at an ALIGN-byte offset, so that its dtype can be viewed in place
        padded += [raw, raw.new_zeros(-raw.numel() % ALIGN)]
    host = torch.cat(padded).cpu()  # the one synchronisation: the host needs the bytes
    out, start = {}, 0
    for (name, tensor), raw in zip(state.items(), flat):
        out[name] = host[start : start + raw.numel()].view(tensor.dtype).view(tensor.shape)
        start += -(-raw.numel() // ALIGN) * ALIGN
    return out
