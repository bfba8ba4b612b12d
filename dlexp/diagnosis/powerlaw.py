"""Fit a power law to dev error against size and say whether growing that size would pay. numpy + scipy.

    error(n) = floor + a * n ** -b      (a >= 0, 0 <= b <= 2, 0 <= floor <= 1)

The floor is what more of the same cannot remove (Bayes error plus the bias or mismatch left); the
extrapolations at 2x and 10x the largest size say how much of the current dev error more would remove.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np


def _law(n, floor, a, b):
    return floor + a * np.power(n, -b)


def fit(sizes: Sequence[float], errors: Sequence[float], *, floor_min: float = 0.0) -> dict | None:
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
    for b0 in (0.3, 0.7, 1.2):  # a few starts: the fit has a shallow valley along (a, b)
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


def judge(sizes: Sequence[float], dev: Sequence[float], *, tolerance: float, what: str = "data",
          train: Sequence[float] | None = None, human: float = 0.0) -> dict:
    """Would more `what` (data, or model width) help? {"helps", "extrapolation", "fit", "why"}.

    It helps when the fitted curve puts the dev error at 10x the largest size at least `tolerance` below
    the dev error measured at the largest size.
    """
    sizes, dev = list(map(float, sizes)), list(map(float, dev))
    largest, now = sizes[-1], dev[-1]
    params = fit(sizes, dev, floor_min=human)
    if params is None:
        return {"helps": None, "extrapolation": None, "fit": None,
                "why": "fewer than 3 sizes: no power law to fit (use --points 3 or more)"}
    at2, at10 = predict(params, 2 * largest), predict(params, 10 * largest)
    gain = now - at10
    helps = gain >= tolerance
    unit = "examples" if what == "data" else "hidden units"
    if helps:
        why = (f"the dev error still falls as a power law (exponent {params['b']:.2f}); at 10x the {unit} "
               f"it extrapolates to {at10:.2%}, {gain:.2%} below the {now:.2%} measured now")
        if what == "data" and train is not None and train[-1] - human >= tolerance:
            why += (f"; the training error ({train[-1]:.2%}) stays well above the human level ({human:.2%}), "
                    "so the avoidable bias needs a bigger model, not data")
    else:
        why = (f"the dev error flattens toward {params['floor']:.2%}; at 10x the {unit} it extrapolates to "
               f"{at10:.2%}, only {gain:+.2%} from the {now:.2%} measured now (tolerance {tolerance:.2%})")
        if train is not None and round(dev[-1] - train[-1], 12) <= tolerance:
            why += "; train and dev are already close, so the remaining error is bias: try a bigger model"
        elif what == "data":
            why += "; the remaining gap is not one that more of the same data closes"
    return {"helps": bool(helps), "extrapolation": {"2x": at2, "10x": at10, "at_2x_size": 2 * largest,
                                                     "at_10x_size": 10 * largest},
            "fit": params, "why": why}
