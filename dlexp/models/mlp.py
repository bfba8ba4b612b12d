"""A multi-layer perceptron: Linear -> activation -> dropout for each hidden width, then a Linear head."""

from __future__ import annotations

import math

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def build(cfg, *, n_features: int, n_classes: int, input_shape=(), **_) -> nn.Module:
    activation = ACTIVATIONS[str(getattr(cfg.activation, "value", cfg.activation))]
    layers: list[nn.Module] = []
    width = n_features
    if len(input_shape) > 1:  # images: flatten C x H x W
        layers.append(nn.Flatten())
        width = math.prod(input_shape)
    for hidden in cfg.hidden:
        layers += [nn.Linear(width, hidden), activation()]
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        width = hidden
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)
