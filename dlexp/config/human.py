"""`baseline.human_error`: a number, a range `[lo, hi]`, `auto` or `none`, read into what the diagnosis needs."""

from __future__ import annotations

from typing import Any

from dlexp.errors import ConfigError


def human_source(value: Any) -> str:
    """`baseline.human_error` -> "auto", "none" or "given" (a number or a range)."""
    if isinstance(value, str) and value.strip().lower() in ("auto", "none"):
        return value.strip().lower()
    return "none" if value is None else "given"


def human_range(value: Any, *, unbounded: bool = False) -> tuple[float, float] | None:
    """`baseline.human_error` given as a range [lo, hi] -> (lo, hi); None for a single number or auto."""
    if isinstance(value, str) or not hasattr(value, "__len__"):
        return None
    values = [human_error(v, None, unbounded=unbounded) for v in value]
    if len(values) != 2 or values[0] > values[1]:
        raise ConfigError(f"baseline.human_error as a range needs [lo, hi] with lo <= hi, got {list(value)}")
    return values[0], values[1]


def human_error(value: Any, bayes_error: float | None, *, required: str | None = None,
                unbounded: bool = False) -> float:
    """Resolve `baseline.human_error`: a number in [0, 1], a range [lo, hi] (its midpoint; `human_range`
    gives the ends), or `auto` (the data source's Bayes error).

    `required` names a source without a known Bayes error where `auto` cannot stand (tables, SQL, npz);
    `unbounded` allows any non-negative number (regression: the error is in the target's unit).
    """
    if human_source(value) == "none":
        return 0.0  # no baseline: the diagnosis treats avoidable bias as unknown
    lo_hi = human_range(value, unbounded=unbounded)
    if lo_hi is not None:
        return (lo_hi[0] + lo_hi[1]) / 2
    if isinstance(value, str) and value.strip().lower() == "auto":
        if bayes_error is None and required:
            raise ConfigError(f"{required} has no known Bayes error, so baseline.human_error=auto cannot "
                              "stand in for it; set your estimate, e.g. baseline.human_error=0.02 "
                              "(for regression, in the target's unit)")
        return bayes_error if bayes_error is not None else 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"baseline.human_error must be a number in [0, 1], a range [lo, hi], auto or none, "
                          f"got {value!r}") from None
    if unbounded:
        if not number >= 0 or number == float("inf"):
            raise ConfigError(f"baseline.human_error must be a finite number >= 0, got {number}")
        return number
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"baseline.human_error must be in [0, 1], got {number}; an error rate of 2% is 0.02")
    return number
