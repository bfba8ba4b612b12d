"""Wrong labels: how well dlexp finds training labels flipped, or targets moved, at known rows.

Each source is written as a table: a training file whose labels are flipped at rows drawn by the seed, to a
different class, at rate r, and a clean dev file of 400 rows (data.path + data.dev_path, as a user gives them).
dlexp's data=table loader splits it; the flagged training rows come from `dlexp.training.labels` (5-fold
logistic regression + confident learning), the same code a run uses. Sources:
- `digits`: scikit-learn's 8x8 digits, 1797 rows, 64 columns, 10 classes;
- `generated`: scikit-learn's make_classification, 2400 rows, 20 columns (10 informative), 4 classes, one
  Gaussian cluster each;
- `synthetic`: dlexp's data=synthetic generator without noise, 2400 rows, 10 columns, 4 classes whose boundary
  no linear model follows (where the search is off by default: it shows why);
- `regression`: a target linear in 8 columns plus noise (2400 rows); at rate r the target is moved by 3-6 of
  its standard deviations; outliers flagged by the 3.5 robust-SD rule on 5-fold ridge residuals.
Prints, per source and rate: precision and recall of the flagged training rows, the true and the estimated
rate with its 95% interval (means over seeds), and the share of seeds whose interval covers the true rate.

    python benchmarks/label_issues.py            # rates 0, 0.05, 0.1, 0.2; seeds 0-2; every source
    python benchmarks/label_issues.py --sources digits --seeds 1
"""

from __future__ import annotations

import argparse
import warnings
import tempfile
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf


def source(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a source, clean."""
    if name == "digits":
        from sklearn.datasets import load_digits

        return load_digits(return_X_y=True)
    if name == "generated":
        from sklearn.datasets import make_classification

        return make_classification(2400, n_features=20, n_informative=10, n_classes=4, n_clusters_per_class=1,
                                   class_sep=1.5, random_state=0)
    if name == "regression":
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2400, 8))
        return x, x @ rng.normal(size=8) + rng.normal(0.0, 0.5, 2400)
    from dlexp.data.synthetic import _task, label

    plane, _ = _task(10, 0)
    x = np.random.default_rng(0).normal(size=(2400, 10))
    return x, label(x, plane, 4)


def files(folder: Path, name: str, rate: float, seed: int) -> tuple[Path, Path, np.ndarray]:
    """train.csv (labels flipped at rate `rate`), dev.csv (clean); the flipped 1-based rows of train.csv."""
    import pandas as pd

    x, y = source(name)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    dev, train = order[:400], order[400:]
    y_train = y[train].copy()
    flip = rng.random(len(train)) < rate
    if name == "regression":
        y_train[flip] += rng.choice([-1.0, 1.0], flip.sum()) * rng.uniform(3, 6, flip.sum()) * y.std()
    else:
        k = int(y.max()) + 1
        y_train[flip] = (y_train[flip] + rng.integers(1, k, flip.sum())) % k
    cols = [f"p{i}" for i in range(x.shape[1])]
    paths = folder / f"train-{name}-{rate}-{seed}.csv", folder / f"dev-{name}-{seed}.csv"
    pd.DataFrame(x[train], columns=cols).assign(label=y_train).to_csv(paths[0], index=False)
    pd.DataFrame(x[dev], columns=cols).assign(label=y[dev]).to_csv(paths[1], index=False)
    return paths[0], paths[1], np.flatnonzero(flip) + 1


def measure(name: str, rate: float, seed: int, folder: Path) -> dict:
    from dlexp.config.schema import TableData
    from dlexp.data import table
    from dlexp.diagnosis.intervals import wilson
    from dlexp.training.labels import cross_validated, cross_validated_residuals, extreme, flag

    train_path, dev_path, flipped = files(folder, name, rate, seed)
    regression = name == "regression"
    cfg = OmegaConf.structured(TableData(path=str(train_path), target="label", dev_path=str(dev_path),
                                         task="regression" if regression else "classification", categorical=[]))
    splits = table.build(cfg, seed=seed)
    x = np.concatenate([splits.train.x, splits.train_dev.x])
    y = np.concatenate([splits.train.y, splits.train_dev.y])
    if regression:
        wrong = extreme(cross_validated_residuals(x, y.astype(np.float64), seed=seed))[0][: len(splits.train)]
    else:
        wrong = flag(splits.train.y, cross_validated(x, y, splits.n_classes, seed=seed)[: len(splits.train)])
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
    ap.add_argument("--sources", nargs="+", default=["digits", "generated", "synthetic", "regression"])
    args = ap.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)  # the mean of no precision (0% flips)
    print("| source | flips | precision | recall | true rate | estimated rate [95% interval] | interval covers |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, rate in ((n, r) for n in args.sources for r in args.rates):
            got = [measure(name, rate, s, Path(tmp)) for s in range(args.seeds)]
            mean = {k: np.nanmean([g[k] for g in got]) for k in ("precision", "recall", "true", "rate", "lo", "hi")}
            cover = sum(g["covered"] for g in got)
            fmt = lambda v: "–" if np.isnan(v) else f"{v:.2f}"  # noqa: E731
            print(f"| {name} | {rate:.0%} | {fmt(mean['precision'])} | {fmt(mean['recall'])} | {mean['true']:.3f} | "
                  f"{mean['rate']:.3f} [{mean['lo']:.3f}, {mean['hi']:.3f}] | {cover} of {len(got)} |", flush=True)


if __name__ == "__main__":
    main()
