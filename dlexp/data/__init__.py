"""Data sources. Each module builds the same `Splits` object from its config section; numpy only here."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlexp.errors import ConfigError

SPLIT_NAMES = ("train", "train_dev", "dev", "test")


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (n, n_features) float32; (n, C, H, W) images; (n, seq_len) int64 tokens, 0 = padding
    y: np.ndarray  # (n,) int64 class labels; float32 targets for regression; (n, seq_len) next tokens (lm)
    rows: np.ndarray | None = None  # each example's row in its source (a table: 1-based data row of its file)

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Splits:
    train: Split
    train_dev: Split  # same distribution as train, never trained on
    dev: Split        # the distribution the model will serve
    test: Split
    n_classes: int                    # 1 for regression (one output)
    bayes_error: float | None = None  # known from the generating process; None when unknown
    task: str = "classification"      # or "regression", or "lm" (next-token prediction, n_classes = vocab)
    metric: str = "error_rate"        # error_rate | rmse | mae: the unit of every error and gap
    target_mean: float = 0.0          # regression: the network learns (y - mean) / std; errors are in y's unit
    target_std: float = 1.0
    vocab: int | None = None          # token sequences: ids 0..vocab-1, 0 = padding
    needs_human: str | None = None    # a description of a source whose human-level error the user must give
    checks: tuple[str, ...] = ()      # findings about the data (leakage, missing classes, tiny splits)
    stats: Mapping[str, float] = field(default_factory=dict)  # logged as data/<name>
    preprocessing: Any = None         # fitted transform to keep with the run (see save_preprocessing)
    description: Mapping[str, Any] = field(default_factory=dict)  # JSON-able account of the preprocessing
    augment: Mapping[str, Any] | None = None  # images: random warps of training batches (models/augment.py)
    examples: tuple = ()              # a few raw training inputs (texts, image paths): the model's input example
    train_weights: np.ndarray | None = None  # data.reweight: each training row's sampling weight (mean 1)

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLIT_NAMES}

    @property
    def n_features(self) -> int:
        return self.train.x.shape[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def spread(self) -> float:
        """The error of a model that ignores its input: the scale for `diagnosis.relative_tolerance`."""
        if self.task == "regression":
            y = self.train.y.astype(np.float64)
            return float(np.mean(np.abs(y - np.median(y)))) if self.metric == "mae" else float(np.std(y))
        return 1.0


def save_preprocessing(splits: Splits, folder) -> list:
    """Write the fitted preprocessing (joblib pickle + a JSON account) into `folder`; return the paths."""
    import json
    from pathlib import Path

    if splits.preprocessing is None and not splits.description:
        return []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    if hasattr(splits.preprocessing, "save"):  # a fitted object with its own file format (a tokenizer)
        paths += splits.preprocessing.save(folder)
    elif splits.preprocessing is not None:
        import joblib

        paths.append(folder / "preprocessing.joblib")
        joblib.dump(splits.preprocessing, paths[-1])
    paths.append(folder / "preprocessing.json")
    paths[-1].write_text(json.dumps(splits.description, indent=2, default=str))
    return paths


def load(data_cfg, *, seed: int) -> Splits:
    """Build the four splits of the source named by `data_cfg.name` (a module in this package), or of the
    user's own `data._target_` (dlexp/data/custom.py: Datasets, not arrays)."""
    if "_target_" in data_cfg:
        from dlexp.data import custom

        return custom.build(data_cfg, seed=seed)
    name = data_cfg.name
    try:
        module = importlib.import_module(f"dlexp.data.{name}")
    except ModuleNotFoundError:
        raise ConfigError(f"unknown data source '{name}'") from None
    splits = module.build(data_cfg, seed=seed)
    if data_cfg.get("exclude_rows"):
        from dlexp.data.exclude import apply

        splits = apply(splits, str(data_cfg.exclude_rows))
    if data_cfg.get("reweight"):
        from dlexp.data import reweight

        splits = reweight.apply(splits, data_cfg.reweight, seed=seed)
    return splits
