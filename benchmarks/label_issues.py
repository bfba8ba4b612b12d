"""Wrong labels: how well dlexp finds training labels flipped at known rows.

Digits (scikit-learn's 8x8) written as a table: a training file whose labels are flipped, at rows drawn by the
seed, to a different class at rate r, and a clean dev file (data.path + data.dev_path, as a user would give
them). dlexp's data=table loader splits it; the flagged training rows come from `dlexp.training.labels`
(5-fold logistic regression + confident learning), the same code a run uses. Prints, per flip rate: precision
and recall of the flagged training rows, the true and the estimated noise rate with its 95% interval, and the
share of seeds whose interval covers the true rate.

    python benchmarks/label_issues.py            # rates 0, 0.05, 0.1, 0.2; seeds 0-2
"""

from __future__ import annotations

import argparse
import warnings
import tempfile
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf


def files(folder: Path, rate: float, seed: int) -> tuple[Path, Path, np.ndarray]:
    """train.csv (labels flipped at rate `rate`), dev.csv (clean); the flipped 1-based rows of train.csv."""
    import pandas as pd
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    dev, train = order[:400], order[400:]
    y_train = y[train].copy()
    flip = rng.random(len(train)) < rate
    y_train[flip] = (y_train[flip] + rng.integers(1, 10, flip.sum())) % 10
    cols = [f"p{i}" for i in range(64)]
    paths = folder / f"train-{rate}-{seed}.csv", folder / "dev.csv"
    pd.DataFrame(x[train], columns=cols).assign(digit=y_train).to_csv(paths[0], index=False)
    pd.DataFrame(x[dev], columns=cols).assign(digit=y[dev]).to_csv(paths[1], index=False)
    return paths[0], paths[1], np.flatnonzero(flip) + 1


def measure(rate: float, seed: int, folder: Path) -> dict:
    from dlexp.config import TableData
    from dlexp.data import table
    from dlexp.diagnosis.intervals import wilson
    from dlexp.training.labels import cross_validated, flag

    train_path, dev_path, flipped = files(folder, rate, seed)
    cfg = OmegaConf.structured(TableData(path=str(train_path), target="digit", dev_path=str(dev_path),
                                         task="classification", categorical=[]))
    splits = table.build(cfg, seed=seed)
    x = np.concatenate([splits.train.x, splits.train_dev.x])
    y = np.concatenate([splits.train.y, splits.train_dev.y])
    probs = cross_validated(x, y, splits.n_classes, seed=seed)[: len(splits.train)]
    wrong = flag(splits.train.y, probs)
    rows, truth = splits.train.rows, np.isin(splits.train.rows, flipped)
    found = np.isin(rows[wrong], flipped).sum()
    n, true_rate = len(rows), truth.mean()
    lo, hi = wilson(wrong.mean(), n)
    return {"precision": found / wrong.sum() if wrong.any() and truth.any() else float("nan"),
            "recall": found / truth.sum() if truth.any() else float("nan"),
            "true": true_rate, "rate": wrong.mean(), "lo": lo, "hi": hi, "covered": lo <= true_rate <= hi}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)  # the mean of no precision (0% flips)
    print("| flips | precision | recall | true rate | estimated rate [95% interval] | interval covers |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for rate in args.rates:
            got = [measure(rate, s, Path(tmp)) for s in range(args.seeds)]
            mean = {k: np.nanmean([g[k] for g in got]) for k in ("precision", "recall", "true", "rate", "lo", "hi")}
            cover = sum(g["covered"] for g in got)
            fmt = lambda v: "–" if np.isnan(v) else f"{v:.2f}"  # noqa: E731
            print(f"| {rate:.0%} | {fmt(mean['precision'])} | {fmt(mean['recall'])} | {mean['true']:.3f} | "
                  f"{mean['rate']:.3f} [{mean['lo']:.3f}, {mean['hi']:.3f}] | {cover} of {len(got)} |", flush=True)


if __name__ == "__main__":
    main()
