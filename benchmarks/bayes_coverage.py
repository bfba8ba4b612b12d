"""How often the estimated Bayes-error bracket of `baseline.human_error=auto` contains the truth.

Each setting draws training and train-dev splits from a distribution whose Bayes error is known (in closed
form, or by Monte Carlo over 400,000 draws of the true posterior), runs dlexp's estimator
(dlexp.data.bayes.bracket) and counts how often lower <= truth <= upper. Target: >= 90% in every setting.

    python benchmarks/bayes_coverage.py            # 20 repetitions per setting, a few minutes on 2 cores
    python benchmarks/bayes_coverage.py --reps 5   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time


import numpy as np
from scipy.stats import norm
from sklearn.datasets import make_friedman1

from dlexp.data.bayes import bracket


def two_gaussians(mu: float, d: int):
    """Classes at -mu and +mu on feature 0, unit variance, d - 1 noise features: Bayes error Phi(-mu)."""
    def draw(rng, n):
        y = rng.integers(0, 2, n)
        x = rng.normal(size=(n, d))
        x[:, 0] += np.where(y == 1, mu, -mu)
        return x, y
    return draw, float(norm.cdf(-mu))


def k_gaussians(k: int, d: int):
    """k classes with unit-variance Gaussian inputs around random centres in 2 of d features."""
    centres = np.random.default_rng(1).normal(size=(k, 2)) * 1.5

    def draw(rng, n):
        y = rng.integers(0, k, n)
        x = rng.normal(size=(n, d))
        x[:, :2] += centres[y]
        return x, y

    x, _ = draw(np.random.default_rng(3), 400_000)
    logp = -0.5 * ((x[:, None, :2] - centres[None]) ** 2).sum(-1)
    post = np.exp(logp - logp.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    return draw, float(np.mean(1 - post.max(1)))


def nonlinear_logistic(d: int):
    """P(y=1 | x) = sigmoid(3 sin(x0) x1 + x2), d - 3 noise features."""
    def posterior(x):
        return 1 / (1 + np.exp(-3 * np.sin(x[:, 0]) * x[:, 1] - x[:, 2]))

    def draw(rng, n):
        x = rng.normal(size=(n, d))
        return x, (rng.random(n) < posterior(x)).astype(np.int64)

    p = posterior(np.random.default_rng(5).normal(size=(400_000, d)))
    return draw, float(np.mean(np.minimum(p, 1 - p)))


def rings(k: int, d: int, noise: float):
    """dlexp's synthetic task (data=synthetic): sectors and rings of a rotated plane, labels flipped with
    probability `noise` to another class: Bayes error = noise."""
    from dlexp.data.synthetic import _task, label

    plane, _ = _task(d, 0)

    def draw(rng, n):
        x = rng.normal(size=(n, d))
        y = label(x, plane, k)
        flip = rng.random(n) < noise
        y[flip] = (y[flip] + rng.integers(1, k, int(flip.sum()))) % k
        return x, y
    return draw, noise


def friedman(noise: float, d: int, metric: str):
    """scikit-learn's Friedman #1 regression with Gaussian noise: Bayes RMSE = noise, MAE = noise sqrt(2/pi)."""
    def draw(rng, n):
        return make_friedman1(n, n_features=d, noise=noise, random_state=int(rng.integers(2**31)))
    return draw, noise * (np.sqrt(2 / np.pi) if metric == "mae" else 1.0)


def linear(k: int, d: int, noise: float):
    def draw(rng, n):
        x = rng.normal(size=(n, d))
        return x, x[:, :k].sum(1) + noise * rng.normal(size=n)
    return draw, noise


# name, task, metric, (draw, truth), n_train, n_train_dev
SETTINGS = [
    ("2 classes, 1 informative + 9 noise features", "classification", "error_rate", two_gaussians(1.6, 10), 4200, 1800),
    ("2 classes, 1 informative + 9 noise features", "classification", "error_rate", two_gaussians(1.0, 10), 4200, 1800),
    ("2 classes, 1 informative + 29 noise features", "classification", "error_rate", two_gaussians(1.0, 30), 4200, 1800),
    ("2 classes, 1 informative + 9 noise, small", "classification", "error_rate", two_gaussians(1.0, 10), 500, 200),
    ("2 classes, nearly separable", "classification", "error_rate", two_gaussians(2.33, 10), 4200, 1800),
    ("4 classes, 2 informative + 6 noise features", "classification", "error_rate", k_gaussians(4, 8), 4200, 1800),
    ("4 classes, 2 informative + 6 noise, small", "classification", "error_rate", k_gaussians(4, 8), 1000, 400),
    ("2 classes, non-linear posterior, 6 features", "classification", "error_rate", nonlinear_logistic(6), 4200, 1800),
    ("3 classes, data=synthetic's rings, 10 features", "classification", "error_rate", rings(3, 10, 0.1), 4200, 1800),
    ("regression, Friedman #1, noise 1, 10 features", "regression", "rmse", friedman(1.0, 10, "rmse"), 4200, 1800),
    ("regression, Friedman #1, noise 3, small", "regression", "rmse", friedman(3.0, 10, "rmse"), 500, 200),
    ("regression, linear 5 of 20 features, noise 0.5", "regression", "rmse", linear(5, 20, 0.5), 4200, 1800),
    ("regression, Friedman #1, noise 1, MAE", "regression", "mae", friedman(1.0, 10, "mae"), 4200, 1800),
]


def coverage(draw, truth: float, *, task: str, metric: str, n_train: int, n_train_dev: int, reps: int,
             seed: int = 100) -> dict:
    lows, highs = [], []
    for rep in range(reps):
        rng = np.random.default_rng(seed + rep)
        x_tr, y_tr = draw(rng, n_train)
        x_td, y_td = draw(rng, n_train_dev)
        lo, hi, _ = bracket(x_tr, y_tr, x_td, y_td, task=task, metric=metric, seed=rep)
        lows.append(lo)
        highs.append(hi)
    lows, highs = np.array(lows), np.array(highs)
    return {"coverage": float(np.mean((lows <= truth) & (truth <= highs))), "below": float(np.mean(lows > truth)),
            "above": float(np.mean(highs < truth)), "lower": float(lows.mean()), "upper": float(highs.mean()),
            "width": float((highs - lows).mean())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="repetitions per setting")
    args = parser.parse_args()
    print(f"{'setting':49s} {'n train/train-dev':>17s} {'metric':>10s} {'Bayes':>7s} {'mean bracket':>17s} "
          f"{'width':>7s} {'coverage':>8s}")
    short = []
    start = time.time()
    for name, task, metric, (draw, truth), n_tr, n_td in SETTINGS:
        r = coverage(draw, truth, task=task, metric=metric, n_train=n_tr, n_train_dev=n_td, reps=args.reps)
        fmt = (lambda v: f"{v:.3f}") if metric == "error_rate" else (lambda v: f"{v:.2f}")
        sizes, mean = f"{n_tr}/{n_td}", f"[{fmt(r['lower'])}, {fmt(r['upper'])}]"
        print(f"{name:49s} {sizes:>17s} {metric:>10s} {fmt(truth):>7s} {mean:>17s} {fmt(r['width']):>7s} "
              f"{r['coverage']:>8.0%}", flush=True)
        if r["coverage"] < 0.9:
            short.append(f"{name} ({r['coverage']:.0%}: lower end above the truth in {r['below']:.0%}, "
                         f"upper end below it in {r['above']:.0%})")
    print(f"\n{args.reps} repetitions per setting, {time.time() - start:.0f} s")
    if short:
        print("below the 90% target: " + "; ".join(short))
    return 0


if __name__ == "__main__":
    sys.exit(main())
