"""Fit a power law to dev error against size and say whether growing that size would pay. numpy + scipy.

    error(n) = floor + a * n ** -b      (a >= 0, 0 <= b <= 2, 0 <= floor <= 1)

The floor is what more of the same cannot remove (Bayes error plus the bias or mismatch left); the
extrapolations at 2x and 10x the largest size say how much of the current dev error more would remove. They are
made only when the law, fitted on the smaller sizes, predicts the largest one within its 95% interval, and come
with a band (the fit redone on dev errors drawn within each point's interval).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np


def _law(n, floor, a, b):
    return floor + a * np.power(n, -b)


def fit(sizes: Sequence[float], errors: Sequence[float], *, floor_min: float = 0.0,
        b_starts: Sequence[float] = (0.3, 0.7, 1.2)) -> dict | None:
    """Least-squares fit of the power law; None with fewer than 3 distinct sizes.

    `floor_min` keeps the fitted floor at or above a known limit (the human level stands in for Bayes error).

    >>> n = np.array([100, 200, 400, 800, 1600])
    >>> f = fit(n, 0.05 + 2.0 * n ** -0.5)
    >>> round(f["floor"], 3), round(f["b"], 2)
    (0.05, 0.5)
    """
    x = np.asarray(sizes, dtype=float)
    y = np.asarray(errors, dtype=float)
    if len(np.unique(x)) < 3:
        return None
    from scipy.optimize import curve_fit

    scale = x.max()  # fit on n / max(n): keeps a and b well conditioned whatever the sizes
    u = x / scale
    span = max(float(y.max() - y.min()), 1e-6)
    best = None
    floor_min = min(max(0.0, floor_min), float(y.min()))
    for b0 in b_starts:  # a few starts: the fit has a shallow valley along (a, b)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # OptimizeWarning: no covariance with as many points as parameters
                params, _ = curve_fit(_law, u, y, p0=(max(floor_min, float(y.min()) - span / 2), span, b0),
                                      bounds=([floor_min, 0.0, 0.0], [1.0, np.inf, 2.0]), maxfev=20000)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((_law(u, *params) - y) ** 2))
        if best is None or sse < best[1]:
            best = (params, sse)
    if best is None:
        return None
    floor, a_u, b = (float(v) for v in best[0])
    # back to the original scale: a_u * (n / scale) ** -b = (a_u * scale ** b) * n ** -b
    return {"floor": floor, "a": float(a_u * scale ** b), "b": b, "rmse": math.sqrt(best[1] / len(x))}


def predict(params: dict, n: float) -> float:
    return float(_law(n, params["floor"], params["a"], params["b"]))


def holdout(sizes: Sequence[float], dev: Sequence[float], interval: Sequence[float], *,
            floor_min: float = 0.0) -> dict | None:
    """Fit on all but the largest size and predict it: does the trend hold out of the points it was fitted on?
    None with fewer than 4 distinct sizes (3 are needed for the fit, one more to check it).

    `interval` is the 95% interval of the dev error measured at the largest size; the check passes when the
    prediction falls inside it.

    >>> n = np.array([100, 200, 400, 800])
    >>> holdout(n, 0.05 + 2.0 * n ** -0.5, (0.11, 0.13))["ok"]
    True
    >>> holdout(n, [0.30, 0.25, 0.20, 0.05], (0.04, 0.06))["ok"]
    False
    """
    if len(np.unique(np.asarray(sizes, dtype=float))) < 4:
        return None
    params = fit(sizes[:-1], dev[:-1], floor_min=floor_min)
    if params is None:
        return None
    predicted = predict(params, sizes[-1])
    lo, hi = float(interval[0]), float(interval[1])
    return {"size": float(sizes[-1]), "predicted": predicted, "measured": float(dev[-1]), "interval": [lo, hi],
            "ok": bool(lo <= predicted <= hi)}


def band(sizes: Sequence[float], dev: Sequence[float], intervals: Sequence[Sequence[float]], at: Sequence[float],
         *, floor_min: float = 0.0, draws: int = 100, seed: int = 0, b0: float = 0.7
         ) -> tuple[list[float], list[float]]:
    """The fit's 95% band at the sizes `at`: the power law refitted to dev errors drawn within each point's
    95% interval (a parametric bootstrap, normal with the interval's width), 2.5th and 97.5th percentiles.
    Each refit starts from `b0` (the exponent of the fit to the measured errors)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(dev, dtype=float)
    sd = np.array([(float(c[1]) - float(c[0])) / (2 * 1.96) for c in intervals])
    at = np.asarray(at, dtype=float)
    curves = []
    for _ in range(draws):
        params = fit(sizes, np.clip(y + rng.normal(0.0, sd), 0.0, None), floor_min=floor_min, b_starts=(b0,))
        if params is not None:
            curves.append(_law(at, params["floor"], params["a"], params["b"]))
    if not curves:
        return [float("nan")] * len(at), [float("nan")] * len(at)
    lo, hi = np.percentile(np.array(curves), [2.5, 97.5], axis=0)
    return [float(v) for v in lo], [float(v) for v in hi]


def judge(sizes: Sequence[float], dev: Sequence[float], *, tolerance: float, what: str = "data",
          train: Sequence[float] | None = None, human: float = 0.0,
          dev_intervals: Sequence[Sequence[float]] | None = None) -> dict:
    """Would more `what` (data, or model width) help? {"helps", "extrapolation", "fit", "check", "band", "why"}.

    The power law is trusted only when, fitted on the smaller sizes, it predicts the dev error at the largest
    within that point's 95% interval (`dev_intervals`; without them, within one tolerance): otherwise there is
    no trend to extrapolate yet, `helps` is None and nothing is extrapolated. It helps when the fitted curve
    puts the dev error at 10x the largest size at least `tolerance` below the dev error measured there.
    """
    sizes, dev = list(map(float, sizes)), list(map(float, dev))
    largest, now = sizes[-1], dev[-1]
    unit = "examples" if what == "data" else "hidden units"
    intervals = list(dev_intervals) if dev_intervals else [(d - tolerance, d + tolerance) for d in dev]
    params = fit(sizes, dev, floor_min=human)
    check = holdout(sizes, dev, intervals[-1], floor_min=human)
    if params is None or check is None:
        return {"helps": None, "extrapolation": None, "fit": None, "check": None, "band": None,
                "why": "fewer than 4 sizes: no power law to fit and check on a held-out point (use --points 4 "
                       "or more); no trend to extrapolate yet"}
    if not check["ok"]:
        lo, hi = check["interval"]
        return {"helps": None, "extrapolation": None, "fit": params, "check": check, "band": None,
                "why": f"no trend to extrapolate yet: fitted on the smaller sizes, the power law predicts "
                       f"{check['predicted']:.2%} at {largest:,.0f} {unit}, outside the {now:.2%} [{lo:.2%}, "
                       f"{hi:.2%}] measured there (more points, or more epochs, may show one)"}
    grid = list(np.geomspace(sizes[0], 10 * largest, 40))
    band_lo, band_hi = band(sizes, dev, intervals, [*grid, 2 * largest, 10 * largest], floor_min=human,
                            b0=max(params["b"], 0.05))
    at2, at10 = predict(params, 2 * largest), predict(params, 10 * largest)
    gain = now - at10
    helps = gain >= tolerance
    held = (f"; fitted on the smaller sizes it predicted {check['predicted']:.2%} at {largest:,.0f} {unit}, "
            f"within the measured {now:.2%}'s interval")
    if helps:
        why = (f"the dev error still falls as a power law (exponent {params['b']:.2f}){held}; at 10x the {unit} "
               f"it extrapolates to {at10:.2%}, {gain:.2%} below the {now:.2%} measured now")
        if what == "data" and train is not None and train[-1] - human >= tolerance:
            why += (f"; the training error ({train[-1]:.2%}) stays well above the human level ({human:.2%}), "
                    "so the avoidable bias needs a bigger model, not data")
    else:
        why = (f"the dev error flattens toward {params['floor']:.2%}{held}; at 10x the {unit} it extrapolates to "
               f"{at10:.2%}, only {gain:+.2%} from the {now:.2%} measured now (tolerance {tolerance:.2%})")
        if train is not None and round(dev[-1] - train[-1], 12) <= tolerance:
            why += "; train and dev are already close, so the remaining error is bias: try a bigger model"
        elif what == "data":
            why += "; the remaining gap is not one that more of the same data closes"
    return {"helps": bool(helps),
            "extrapolation": {"2x": at2, "10x": at10, "at_2x_size": 2 * largest, "at_10x_size": 10 * largest,
                              "2x_interval": [band_lo[-2], band_hi[-2]], "10x_interval": [band_lo[-1], band_hi[-1]]},
            "fit": params, "check": check,
            "band": {"sizes": [float(v) for v in grid], "lo": band_lo[:-2], "hi": band_hi[:-2]}, "why": why}
