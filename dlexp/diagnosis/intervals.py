"""95% intervals: Wilson for an error rate, Newcombe/MOVER for a gap, seed spread added in quadrature.

Closed-form, so stdlib math suffices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from dlexp.diagnosis.splits import SPLITS, Z95, SplitErrors, gap_terms

# --------------------------------------------------------------------------------------------------
# Intervals: closed-form, so stdlib math suffices. Wilson's score interval for an error rate measured on
# n examples; for a gap (the difference of two independent estimates) Newcombe's hybrid score method,
# which is MOVER ("method of variance estimates recovery") applied to two Wilson intervals. MOVER also
# takes any other pair of intervals (a bootstrap's for regression, seed-widened ones), so gaps stay
# consistent with whatever produced the error intervals.

# two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (beyond that: the normal's)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (Z95 from 31 on)."""
    return _T975[df - 1] if 1 <= df <= len(_T975) else Z95


def wilson(p: float, n: int | None, *, z: float = Z95) -> tuple[float, float] | None:
    """Wilson's score interval for a proportion `p` observed on `n` examples; None when n is unknown.

    >>> [round(x, 4) for x in wilson(0.1, 200)]
    [0.0657, 0.1494]
    >>> wilson(0.0, 100)[0]
    0.0
    """
    if not n:
        return None
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(max(0.0, p * (1 - p) / n + z2 / (4 * n * n)))
    lo = 0.0 if p <= 0 else max(0.0, centre - half)
    hi = 1.0 if p >= 1 else min(1.0, centre + half)
    return lo, hi


def mover(a: float, ci_a: tuple[float, float], b: float, ci_b: tuple[float, float]) -> tuple[float, float]:
    """Interval for a - b from intervals for two independent estimates a and b (Newcombe/Zou-Donner MOVER).

    >>> [round(x, 4) for x in mover(0.12, wilson(0.12, 500), 0.10, wilson(0.10, 500))]
    [-0.019, 0.0591]
    """
    d = a - b
    lo = d - math.sqrt((a - ci_a[0]) ** 2 + (ci_b[1] - b) ** 2)
    hi = d + math.sqrt((ci_a[1] - a) ** 2 + (b - ci_b[0]) ** 2)
    return lo, hi


def newcombe(p1: float, n1: int | None, p2: float, n2: int | None) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval for p1 - p2, two independent proportions on n1 and n2 examples."""
    c1, c2 = wilson(p1, n1), wilson(p2, n2)
    if c1 is None or c2 is None:
        return None
    return mover(p1, c1, p2, c2)


def _widen(estimate: float, ci: tuple[float, float], half: float) -> tuple[float, float]:
    """Add a symmetric half-width `half` (the seed-to-seed term) to both sides of `ci`, in quadrature."""
    lo = estimate - math.sqrt((estimate - ci[0]) ** 2 + half ** 2)
    hi = estimate + math.sqrt((ci[1] - estimate) ** 2 + half ** 2)
    return max(0.0, lo), min(1.0, hi)


def intervals(errors: SplitErrors, sizes: Mapping[str, int | None] | None = None, *,
              human_range: Sequence[float] | None = None, spread: Mapping[str, float] | None = None,
              n_seeds: int = 1, given: Mapping[str, Sequence[float] | None] | None = None,
              ) -> dict[str, tuple[float, float] | None]:
    """95% intervals for the human level, the four split errors and the four gaps.

    - a split error: Wilson's interval on the split's size (None when the size is unknown), or the one
      in `given` (a bootstrap's, for regression);
    - pooled seeds: `errors` are the means over `n_seeds` runs, `sizes` the pooled sizes, `spread` the
      seed-to-seed standard deviation of each error; the part of its variance that sampling alone does not
      explain enters as t(n_seeds - 1) * sd_excess / sqrt(n_seeds), added in quadrature;
    - human: `human_range` (several annotators) or the point itself; it widens avoidable_bias;
    - a gap: MOVER on its two terms' intervals (Newcombe's hybrid score method for two Wilson intervals),
      or the one in `given` (a bootstrap of the difference, for regression);
    - no train-dev error: no train-dev interval, and the joint train-to-dev gap instead of variance and
      data mismatch (`gap_terms`).

    >>> iv = intervals(SplitErrors(0.01, 0.08, 0.09, 0.10, 0.11), {"train": 8000, "train_dev": 2000,
    ...                "dev": 2000, "test": 2000})
    >>> [round(x, 4) for x in iv["data_mismatch"]]
    [-0.0082, 0.0282]
    """
    sizes, spread, given = sizes or {}, spread or {}, given or {}
    values = errors.as_dict()
    out: dict[str, tuple[float, float] | None] = {}
    h = values["human"]
    out["human"] = (float(min(human_range)), float(max(human_range))) if human_range else (h, h)
    for split in SPLITS:
        p = values[split]
        if p is None:  # not measured
            out[split] = None
            continue
        ci = tuple(given[split]) if given.get(split) is not None else wilson(p, sizes.get(split))
        if ci is not None and n_seeds > 1 and spread.get(split):
            # the seed-to-seed variance beyond what sampling alone gives each run (which Wilson's interval on
            # the pooled examples already holds): t with n_seeds - 1 degrees of freedom on its mean
            per_run = sizes.get(split) / n_seeds if sizes.get(split) else None
            sampling = p * (1 - p) / per_run if per_run and given.get(split) is None else 0.0
            excess = math.sqrt(max(0.0, spread[split] ** 2 - sampling))
            ci = _widen(p, ci, t975(n_seeds - 1) * excess / math.sqrt(n_seeds))
        out[split] = ci
    for name, (a, b) in gap_terms(errors).items():
        ci_a, ci_b = out[a], out[b]
        if given.get(name) is not None and not (n_seeds > 1 and spread):  # a bootstrap's own gap interval
            out[name] = tuple(given[name])
        else:
            out[name] = None if ci_a is None or ci_b is None else mover(values[a], ci_a, values[b], ci_b)
    return out
