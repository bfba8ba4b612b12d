"""The names every part of dlexp shares (splits, gaps, verdicts) and the four errors of a run."""

from __future__ import annotations

import math
from dataclasses import dataclass

SPLITS = ("train", "train_dev", "dev", "test")
GAPS = ("avoidable_bias", "variance", "data_mismatch", "dev_overfitting")
VERDICTS = GAPS + ("within_tolerance", "inconclusive", "diverged")

# gap name -> (the larger error, the smaller error): gap = errors[a] - errors[b]
GAP_TERMS = {
    "avoidable_bias": ("train", "human"),
    "variance": ("train_dev", "train"),
    "data_mismatch": ("dev", "train_dev"),
    "dev_overfitting": ("test", "dev"),
}

DEFAULT_TOLERANCE = 0.01
Z95 = 1.959963984540054  # two-sided 95%: NormalDist().inv_cdf(0.975)
GENERATED_SOURCES = ("synthetic", "sequence")  # data sources that can draw more examples on request


@dataclass(frozen=True)
class SplitErrors:
    """Errors on the four splits and the human-level error, all in the same unit (an error rate here)."""

    human: float
    train: float
    train_dev: float
    dev: float
    test: float

    def as_dict(self) -> dict[str, float]:
        return {"human": self.human, "train": self.train, "train_dev": self.train_dev,
                "dev": self.dev, "test": self.test}


def check_error(name: str, value: float) -> None:
    """Raise ValueError when an error rate is not a number in [0, 1]."""
    if not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} error must be a number in [0, 1], got {value!r}")
