"""The names every part of dlexp shares (splits, gaps, verdicts) and the four errors of a run."""

from __future__ import annotations

import math
from dataclasses import dataclass

SPLITS = ("train", "train_dev", "dev", "test")
GAPS = ("avoidable_bias", "variance", "data_mismatch", "dev_overfitting")
# without a train-dev error the train-to-dev gap cannot be split into variance and data mismatch: one gap
JOINT_GAP = "variance_or_mismatch"
VERDICTS = GAPS + (JOINT_GAP, "within_tolerance", "inconclusive", "diverged")

# gap name -> (the larger error, the smaller error): gap = errors[a] - errors[b]
GAP_TERMS = {
    "avoidable_bias": ("train", "human"),
    "variance": ("train_dev", "train"),
    "data_mismatch": ("dev", "train_dev"),
    "dev_overfitting": ("test", "dev"),
}

ALL_GAP_TERMS = {**GAP_TERMS, JOINT_GAP: ("dev", "train")}

DEFAULT_TOLERANCE = 0.01
Z95 = 1.959963984540054  # two-sided 95%: NormalDist().inv_cdf(0.975)
GENERATED_SOURCES = ("synthetic", "sequence")  # data sources that can draw more examples on request


@dataclass(frozen=True)
class SplitErrors:
    """Errors on the four splits and the human-level error, all in the same unit (an error rate here).

    `train_dev` is None when it was not measured (a run another tool logged): the gaps are then `gap_terms`'s.
    """

    human: float
    train: float
    train_dev: float | None
    dev: float
    test: float

    def as_dict(self) -> dict[str, float]:
        return {"human": self.human, "train": self.train, "train_dev": self.train_dev,
                "dev": self.dev, "test": self.test}


def gap_terms(errors: SplitErrors) -> dict[str, tuple[str, str]]:
    """The gaps these errors measure: the four, or without train-dev avoidable bias, the joint train-to-dev gap
    and dev overfitting.

    >>> list(gap_terms(SplitErrors(0.01, 0.08, None, 0.10, 0.11)))
    ['avoidable_bias', 'variance_or_mismatch', 'dev_overfitting']
    """
    if errors.train_dev is not None:
        return dict(GAP_TERMS)
    return {name: ALL_GAP_TERMS[name] for name in ("avoidable_bias", JOINT_GAP, "dev_overfitting")}


def check_error(name: str, value: float) -> None:
    """Raise ValueError when an error rate is not a number in [0, 1]."""
    if not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} error must be a number in [0, 1], got {value!r}")
