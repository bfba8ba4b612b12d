"""Data sources. Each module builds the same `Splits` object from its config section; numpy only here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from dlexp.errors import ConfigError

SPLIT_NAMES = ("train", "train_dev", "dev", "test")


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (n, n_features) float32
    y: np.ndarray  # (n,) int64 class labels

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Splits:
    train: Split
    train_dev: Split  # same distribution as train, never trained on
    dev: Split        # the distribution the model will serve
    test: Split
    n_classes: int
    bayes_error: float | None = None  # known from the generating process; None when unknown

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLIT_NAMES}

    @property
    def n_features(self) -> int:
        return self.train.x.shape[1]


def load(data_cfg, *, seed: int) -> Splits:
    """Build the four splits of the source named by `data_cfg.name` (a module in this package)."""
    name = data_cfg.name
    try:
        module = importlib.import_module(f"dlexp.data.{name}")
    except ModuleNotFoundError:
        raise ConfigError(f"unknown data source '{name}'") from None
    return module.build(data_cfg, seed=seed)
