"""Find wrong labels after training: confident learning (the `cleanlab` library) on out-of-sample predicted
probabilities for classification, extreme out-of-sample residuals for regression.

Out of sample means from a model that never trained on the example:
- train and train-dev: 5-fold cross-validated predictions of a cheap reference model fitted on the two
  together (scikit-learn): a logistic regression (C=0.1) for classes, a ridge regression for a number. It
  reads the inputs of a table (as they are: tables, digits) or of the user's own Datasets when an item holds at
  most SMALL numbers (flattened, standardized); otherwise (token sequences, larger images or items) the
  network's features (dlexp/training/features.py: what its last Linear layer takes in, standardized). Of the
  user's own train and train-dev, a seeded sample of at most CAP items each is read.
  C=0.1 was chosen by measurement on digits as a table with 10% of training labels flipped at known rows
  (benchmarks/label_issues.py): C=1 flagged too many (precision 0.75, recall 0.84), C=0.1 precision 0.91,
  recall 0.83; 5-fold gradient boosting took several times as long.
- dev and test: the trained network's own softmax or residuals, from the fit's eval pass.
The network's features saw the training labels, so on its own training rows they are not fully out of sample
(data=synthetic, 10% flips: precision 0.34, recall 0.76 after 10 epochs; after 60 the network had learnt the
flips, recall 0.10), and a linear model on that source's inputs flags 40% of clean rows: hence off by default
outside tables (`wanted`).

Regression: a target is an outlier when its residual r is more than K = 3.5 robust standard deviations from
the residuals' median: |r - median(r)| > 3.5 x 1.4826 x MAD (the modified z-score rule of Iglewicz and Hoaglin).
Measured on a generated table with 3% of targets moved by 3-6 standard deviations: ridge residuals flag them
with precision 0.96, recall 1.0, and flag none of a clean table; 5-fold gradient boosting's residuals flagged
more clean rows (precision 0.84).

Writes `analysis/label_issues.csv` (split,row,given,suggested,confidence; split order, worst first within a
split; `row` is the split's `Split.rows` entry: the data row in its file for a table, else the dataset index;
for regression `suggested` is empty and `confidence` is the residual's robust z-score) and returns the
document's `label_issues` section. numpy, scikit-learn, cleanlab (and torch for the network's features).
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from dlexp.data import SPLIT_NAMES
from dlexp.diagnosis.intervals import wilson
from dlexp.diagnosis.labels import CSV

FOLDS = 5
K = 3.5          # regression: an outlier's residual is beyond K robust standard deviations from the median
SMALL = 1024     # the user's own items with at most this many numbers are read as they are, else the features
BATCH = 256      # items per batch when the user's own Datasets are read for the reference model
CAP = 20_000     # the user's own train and train-dev: a seeded sample of at most this many items each is searched


def cross_validated(x: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int,
                    scale: bool = False) -> np.ndarray | None:
    """(n, n_classes) out-of-sample probabilities from K-fold logistic regression; None when a class is too
    rare to fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    present, counts = np.unique(y, return_counts=True)
    folds = min(FOLDS, int(counts.min()))
    if folds < 2 or len(present) < 2:
        return None
    model = _scaled(LogisticRegression(max_iter=300, C=0.1), scale)  # C=0.1: measured, see the docstring
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = cross_val_predict(model, x.reshape(len(x), -1), y, cv=cv, method="predict_proba")
    full = np.zeros((len(y), n_classes))
    full[:, present] = probs  # a class absent from training gets probability 0
    return full


def cross_validated_residuals(x: np.ndarray, y: np.ndarray, *, seed: int, scale: bool = False) -> np.ndarray | None:
    """(n,) out-of-sample residuals (prediction - y) of K-fold ridge regression; None when too few rows."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold, cross_val_predict

    if len(y) < 2 * FOLDS:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = cross_val_predict(_scaled(Ridge(alpha=1.0), scale), x.reshape(len(x), -1), y,
                                 cv=KFold(FOLDS, shuffle=True, random_state=seed))
    return pred - y


def _scaled(model, scale: bool):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), model) if scale else model


def flag(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Boolean mask of the labels confident learning finds wrong (in this process: a forked worker pool
    would hang once torch's threads have started)."""
    from cleanlab.filter import find_label_issues

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(find_label_issues(y, probs, filter_by="prune_by_noise_rate", n_jobs=1), dtype=bool)


def extreme(residuals: np.ndarray, k: float = K) -> tuple[np.ndarray, np.ndarray]:
    """(outlier mask, robust z-scores): |r - median| / (1.4826 MAD) beyond `k`.

    >>> mask, z = extreme(np.array([0.1, -0.2, 0.0, 0.3, -0.1, 9.0]))
    >>> mask.tolist(), round(float(z[-1]), 1)
    ([False, False, False, False, False, True], 30.2)
    """
    r = np.asarray(residuals, dtype=np.float64)
    spread = np.abs(r - np.median(r))
    sd = 1.4826 * np.median(spread)
    if sd <= 0:  # over half the residuals equal: the mean absolute deviation as the scale (1.2533: normal's)
        sd = 1.2533 * float(np.mean(spread))
    z = spread / sd if sd > 0 else np.zeros_like(r)
    return z > k, z


def dataset_rows(ds) -> np.ndarray:
    """Each item's index in the user's own Dataset (through dlexp's views of it: train-dev carved from train)."""
    from dlexp.data.custom import Rows

    if isinstance(ds, Rows):
        return dataset_rows(ds.dataset)[ds.rows]
    return np.arange(len(ds))


def reference_inputs(splits, net, *, seed: int = 0) -> tuple[dict, str, bool] | None:
    """What the reference model reads for train and train-dev: ({split: (x, y, rows)}, what x is, whether to
    standardize it); None when there is nothing to read it with."""
    from dlexp.data import Splits

    if isinstance(splits, Splits):
        tables = splits.vocab is None and splits.train.x.ndim == 2
        small = splits.vocab is None and int(np.prod(splits.train.x.shape[1:])) <= SMALL
        if tables or small or net is None:
            if splits.vocab is not None:
                return None
            return ({name: (getattr(splits, name).x, getattr(splits, name).y, _rows(getattr(splits, name)))
                     for name in ("train", "train_dev")}, "the inputs", not tables)
        from dlexp.training.features import in_memory

        out = {}
        for name in ("train", "train_dev"):
            split = getattr(splits, name)
            feats, y, _ = in_memory(net, split.x, split.y)
            out[name] = (feats, y, _rows(split))
        return out, "the network's features", True
    if net is None:
        return None
    from dlexp.training.features import read
    from dlexp.training.loaders import loader, sampled

    small = int(np.prod(splits.input_shape)) <= SMALL
    out = {}
    for name in ("train", "train_dev"):
        ds, _ = sampled(splits, name, CAP, seed=seed)  # at most CAP items, read once through the network
        feats, y, flat = read(net, loader(ds, batch_size=BATCH, num_workers=0, collate=splits.collate.get(name)),
                              keep_inputs=small)
        y = y if y.ndim == 1 else y.reshape(len(y), -1)[:, 0]  # a regression target of shape (1,)
        out[name] = (flat if small else feats, y, dataset_rows(ds))
    return out, "the inputs" if small else "the network's features", True


def _rows(split) -> np.ndarray:
    return split.rows if getattr(split, "rows", None) is not None else np.arange(len(split))


def out_of_sample(splits, result, *, seed: int) -> dict[str, tuple]:
    """split -> (labels, probabilities (classification) or residuals (regression), row numbers, method)."""
    from dlexp.data import Splits

    regression = splits.task == "regression"
    out = {}
    try:
        given = reference_inputs(splits, result.net, seed=seed) if len(splits.train) and len(splits.train_dev) else None
    except Exception:  # noqa: BLE001 - the user's items or collate the network reads but a flat array cannot hold
        given = None   # train and train-dev go unsearched; dev and test still come from the network
    if given is not None:
        parts, what, scale = given
        x = np.concatenate([parts["train"][0], parts["train_dev"][0]])
        y = np.concatenate([parts["train"][1], parts["train_dev"][1]])
        scores = (cross_validated_residuals(x.astype(np.float64), y.astype(np.float64), seed=seed, scale=scale)
                  if regression else cross_validated(x, y.astype(np.int64), splits.n_classes, seed=seed, scale=scale))
        if scores is not None:
            method = f"{FOLDS}-fold {'ridge' if regression else 'logistic'} regression on {what}"
            n = len(parts["train"][1])
            out["train"] = (parts["train"][1], scores[:n], parts["train"][2], method)
            out["train_dev"] = (parts["train_dev"][1], scores[n:], parts["train_dev"][2], method)
    for name in ("dev", "test"):  # the network's own, from the fit's eval pass over the whole split
        scored = (result.evals or {}).get(name)
        own = None if scored is None or scored.rows is not None else (
            scored.residuals if regression else scored.probabilities)
        if own is not None:
            split = getattr(splits, name)
            rows = _rows(split) if isinstance(splits, Splits) else dataset_rows(split)
            out[name] = (np.asarray(scored.labels), own, rows, "the network")
    return out


TABLES = ("table", "sql", "digits")  # where a linear reference model on the inputs is trusted


def wanted(setting: bool | None, source: str) -> bool:
    """Whether to look for wrong labels: `diagnosis.label_issues`, or by default on tables only. Elsewhere (the
    generated sources, images, text, the user's own Datasets) the reference model misses what the network
    learns, and its disagreements would read as wrong labels.

    >>> wanted(None, "digits"), wanted(None, "synthetic"), wanted(True, "synthetic"), wanted(False, "table")
    (True, False, True, False)
    """
    return bool(setting) if setting is not None else source in TABLES


def find(splits, result, workdir: Path, *, seed: int) -> dict | None:
    """Flag each split's likely wrong labels (outliers for regression); write the CSV; return
    {split: {count, rate, interval, n, method, ...}}."""
    if splits.task not in ("classification", "regression"):
        return None
    regression = splits.task == "regression"
    doc, rows = {}, []
    for name, (y, scores, numbers, method) in out_of_sample(splits, result, seed=seed).items():
        n, y = len(y), np.asarray(y).reshape(len(y), -1)[:, 0]
        y = y.astype(np.float64 if regression else np.int64)
        if n < 2 or (not regression and len(np.unique(y)) < 2):
            continue
        try:
            wrong, badness = extreme(scores) if regression else (flag(y, scores), 1.0 - scores[np.arange(n), y])
        except Exception:  # noqa: BLE001 - a degenerate split (one class predicted) is not worth failing a run
            continue
        count = int(wrong.sum())
        entry = {"count": count, "rate": count / n, "interval": list(wilson(count / n, n)), "n": n, "method": method}
        if regression:
            entry.update(kind="outliers", threshold=K)
        elif name in ("dev", "test"):
            pred = scores.argmax(1)
            entry["mistakes"] = int((pred != y).sum())
            entry["flagged_mistakes"] = int((wrong & (pred != y)).sum())
        doc[name] = entry
        for i in np.flatnonzero(wrong)[np.argsort(-badness[wrong], kind="stable")]:
            # a float32 target, written to its 7 significant digits: the file's value, not 17.794321060180664
            given, suggested = (float(f"{y[i]:.7g}"), "") if regression else (int(y[i]), int(scores[i].argmax()))
            rows.append((name, int(numbers[i]), given, suggested, round(float(badness[i]), 4)))
    if not doc:
        return None
    write(rows, Path(workdir) / "analysis" / CSV, classes=None if regression else _classes(splits))
    return {k: doc[k] for k in SPLIT_NAMES if k in doc}


def _classes(splits) -> list | None:
    """The class names, where the source keeps them (a table's preprocessing, text's description)."""
    kept = splits.preprocessing.get("classes") if isinstance(splits.preprocessing, dict) else None
    return kept or (splits.description or {}).get("classes")


def write(rows, path: Path, *, classes=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    name = (lambda c: classes[c] if c != "" else c) if classes else (lambda c: c)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["split", "row", "given", "suggested", "confidence"])
        for split, row, given, suggested, confidence in rows:
            out.writerow([split, row, name(given), name(suggested), confidence])
