"""Multinomial logistic regression: one Linear layer of logits."""

from __future__ import annotations

import math

from torch import nn


def build(cfg, *, n_features: int, n_classes: int, input_shape=(), **_) -> nn.Module:
    # images (C x H x W) are flattened: a linear model sees every pixel
    if len(input_shape) > 1:
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), n_classes))
    return nn.Linear(n_features, n_classes)
