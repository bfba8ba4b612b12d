"""The network's features: what its last Linear layer takes in (the representation its head reads), read in
eval mode over a split's batches, for a cheap head fitted beside the network (the wrong-label search,
dlexp/training/labels.py). A network without a Linear layer gives its outputs instead."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def last_linear(net: torch.nn.Module) -> torch.nn.Module | None:
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    return linears[-1] if linears else None


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


@torch.inference_mode()
def read(net: torch.nn.Module, batches: Iterable, *, keep_inputs: bool = False):
    """(features (n, d) float32, labels (n,), inputs flattened (n, -1) or None) over `(x, y)` batches."""
    device = next(net.parameters()).device
    head, caught = last_linear(net), []
    hook = head.register_forward_hook(lambda m, args, out: caught.append(args[0])) if head is not None else None
    was_training = net.training
    net.eval()
    feats, ys, xs = [], [], []
    try:
        for x, y in batches:
            ys.append(_numpy(y))
            if keep_inputs:
                xs.append(_numpy(x).reshape(len(ys[-1]), -1).astype(np.float32))
            out = net(torch.as_tensor(x).to(device))
            got = caught[-1] if caught else out  # the head's input: its last call in this forward
            feats.append(got.float().flatten(1).cpu().numpy())
            caught.clear()
    finally:
        if hook is not None:
            hook.remove()
        net.train(was_training)
    return (np.concatenate(feats), np.concatenate(ys), np.concatenate(xs) if keep_inputs else None)


def in_memory(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512):
    """`read` over an in-memory split's arrays."""
    return read(net, ((torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])), y[i:i + batch_size])
                      for i in range(0, len(y), batch_size)))
