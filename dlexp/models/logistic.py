"""Multinomial logistic regression: one Linear layer of logits."""

from __future__ import annotations

from torch import nn


def build(cfg, *, n_features: int, n_classes: int) -> nn.Module:
    return nn.Linear(n_features, n_classes)
