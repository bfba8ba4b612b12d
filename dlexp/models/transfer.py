"""Start a network from another run's weights (model.init_from) and freeze its body (model.freeze=body).

Every tensor whose name and shape match is copied; the rest keep their fresh initialisation. The head (the
network's last Linear layer) is always new when the source predicted something else: other classes, or
next tokens (a language model) where this run classifies.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from dlexp.errors import TrainingError


def head_prefix(net: nn.Module) -> str:
    """The name of the last Linear layer: the head ('' when the whole network is one Linear layer)."""
    last = None
    for name, module in net.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        raise TrainingError("this network has no Linear head to train on its own")
    return last


def _in(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def load_matching(net: nn.Module, state: Mapping[str, torch.Tensor], *, source: str,
                  new_head: bool = False) -> dict:
    """Copy the matching tensors of a Lightning checkpoint's `state_dict` (keys 'net.<name>') into `net`.

    Returns {"loaded": [...], "new": [...]} (tensor names); a TrainingError when nothing matches.
    """
    theirs = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
    own = net.state_dict()
    head = head_prefix(net)
    loaded = [k for k, v in own.items() if k in theirs and tuple(theirs[k].shape) == tuple(v.shape)
              and not (new_head and _in(k, head))]
    if not loaded:
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in list(theirs.items())[:3])
        raise TrainingError(f"model.init_from={source}: none of its {len(theirs)} weight tensors matches this "
                            f"network by name and shape (it has {shapes}{', ...' if len(theirs) > 3 else ''}); "
                            "start from a run of the same model family and width")
    with torch.no_grad():
        net.load_state_dict({**own, **{k: theirs[k].to(own[k].dtype) for k in loaded}})
    return {"loaded": loaded, "new": [k for k in own if k not in loaded]}


def freeze_body(net: nn.Module) -> dict:
    """Stop gradients everywhere but the head; returns the trainable and frozen parameter counts."""
    head = head_prefix(net)
    counts = {"trainable": 0, "frozen": 0}
    for name, p in net.named_parameters():
        keep = _in(name, head)
        p.requires_grad_(keep)
        counts["trainable" if keep else "frozen"] += p.numel()
    return counts
