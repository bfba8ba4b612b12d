"""Model families: each module's `build(cfg, n_features, n_classes)` returns a torch nn.Module of logits."""

from __future__ import annotations

import importlib

from dlexp.errors import ConfigError


def build(model_cfg, *, n_features: int, n_classes: int):
    try:
        module = importlib.import_module(f"dlexp.models.{model_cfg.name}")
    except ModuleNotFoundError:
        raise ConfigError(f"unknown model family '{model_cfg.name}'") from None
    return module.build(model_cfg, n_features=n_features, n_classes=n_classes)
