"""Percentile-bootstrap intervals for regression errors (RMSE or MAE in the target's unit) and their gaps.

A classification error rate gets Wilson's interval from its split's size alone; an RMSE or MAE needs the
per-example errors. Each split's examples are resampled with replacement (`n_boot` times, independently
per split); a split's interval is the percentile interval of its resampled statistic, and a gap's the
percentile interval of the difference of its two independently resampled statistics. The human level is
a fixed number, or a range [lo, hi] that widens avoidable_bias the way `diagnosis.intervals` does (MOVER).
The result goes to `diagnosis.diagnose(given_intervals=...)`. numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from dlexp.diagnosis.splits import GAP_TERMS, SPLITS

METRICS = ("rmse", "mae")
CHUNK_ELEMENTS = 4_000_000  # resampled indices held at once (32 MB of int64)


def statistic(errors: np.ndarray, metric: str) -> float:
    """RMSE = sqrt(mean(e^2)) or MAE = mean(|e|) of per-example errors."""
    e = np.asarray(errors, dtype=np.float64)
    return float(np.sqrt(np.mean(e * e))) if metric == "rmse" else float(np.mean(np.abs(e)))


def replicates(errors: np.ndarray, metric: str, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`n_boot` bootstrap replicates of the statistic: an (n_boot x n) index matrix, in chunks."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    values = e * e if metric == "rmse" else np.abs(e)
    n = len(values)
    out = np.empty(n_boot, dtype=np.float64)
    rows = max(1, CHUNK_ELEMENTS // max(1, n))
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return np.sqrt(out) if metric == "rmse" else out


def intervals(per_example: Mapping[str, np.ndarray], metric: str, human: float | Sequence[float], *,
              n_boot: int = 1000, seed: int = 0, level: float = 0.95,
              ) -> dict[str, tuple[float, float] | None]:
    """Percentile-bootstrap intervals for each split's error and each gap.

    `per_example`: split -> per-example errors (absolute errors, in the target's unit); a split that is
    missing or empty gets None, and so do its gaps. `human`: the human-level error, or a range [lo, hi]
    (its midpoint is the point estimate, its ends the interval). Returns {"human", the four splits, the
    four gaps: (lo, hi) or None}.

    >>> rng = np.random.default_rng(1)
    >>> iv = intervals({s: rng.normal(0, 2.0, 500) for s in SPLITS}, "rmse", 1.5)
    >>> [round(x, 3) for x in iv["dev"]]
    [1.965, 2.236]
    >>> [round(x, 3) for x in iv["avoidable_bias"]]  # the train interval less the human level
    [0.201, 0.439]
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive, got {n_boot!r}")
    if isinstance(human, (int, float, np.floating, np.integer)):
        h_lo = h_hi = h = float(human)
    else:
        h_lo, h_hi = (float(x) for x in human)
        h = (h_lo + h_hi) / 2
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    children = np.random.SeedSequence(seed).spawn(len(SPLITS))  # one independent stream per split
    point: dict[str, float] = {"human": h}
    boot: dict[str, np.ndarray] = {}
    out: dict[str, tuple[float, float] | None] = {"human": (h_lo, h_hi)}
    for split, child in zip(SPLITS, children):
        e = per_example.get(split)
        if e is None or len(e) == 0:
            out[split] = None
            continue
        point[split] = statistic(e, metric)
        boot[split] = replicates(e, metric, n_boot, np.random.default_rng(child))
        lo, hi = np.percentile(boot[split], q)
        out[split] = (float(lo), float(hi))
    for name, (a, b) in GAP_TERMS.items():
        if a not in boot or (b != "human" and b not in boot):
            out[name] = None
        elif b == "human":  # a fixed human level shifts the interval; a range widens it (MOVER)
            lo_a, hi_a = out[a]
            d = point[a] - h
            out[name] = (d - math.hypot(point[a] - lo_a, h_hi - h), d + math.hypot(hi_a - point[a], h - h_lo))
        else:
            lo, hi = np.percentile(boot[a] - boot[b], q)
            out[name] = (float(lo), float(hi))
    return out
