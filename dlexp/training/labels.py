"""Find wrong labels after training (classification): confident learning (the `cleanlab` library) on
out-of-sample predicted probabilities.

- train and train-dev: 5-fold cross-validated probabilities of a logistic regression (C=0.1) fitted on the
  two together (scikit-learn). Chosen by measurement on digits as a table with 10% of training labels
  flipped at known rows (benchmarks/label_issues.py): C=1 flagged too many (precision 0.75, recall 0.84),
  C=0.1 precision 0.91, recall 0.83; 5-fold gradient boosting took several times as long. Only for flat
  inputs (tables, digits, images flattened); token sequences skip it.
- dev and test: the trained network's own softmax (it never trained on them), from the fit's eval pass.

Writes `analysis/label_issues.csv` (split,row,given,suggested,confidence; split order, worst first within a
split; `row` is the split's `Split.rows` entry: the data row in its file for a table, else the dataset index)
and returns the document's `label_issues` section. numpy, scikit-learn and cleanlab only.
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


def cross_validated(x: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int) -> np.ndarray | None:
    """(n, n_classes) out-of-sample probabilities from K-fold logistic regression; None when a class is too
    rare to fold or the inputs are not flat features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    present, counts = np.unique(y, return_counts=True)
    folds = min(FOLDS, int(counts.min()))
    if folds < 2 or len(present) < 2:
        return None
    model = LogisticRegression(max_iter=300, C=0.1)  # C=0.1: measured, see the module docstring
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = cross_val_predict(model, x.reshape(len(x), -1), y, cv=cv, method="predict_proba")
    full = np.zeros((len(y), n_classes))
    full[:, present] = probs  # a class absent from training gets probability 0
    return full


def flag(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Boolean mask of the labels confident learning finds wrong (in this process: a forked worker pool
    would hang once torch's threads have started)."""
    from cleanlab.filter import find_label_issues

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(find_label_issues(y, probs, filter_by="prune_by_noise_rate", n_jobs=1), dtype=bool)


def probabilities(splits, result, *, seed: int) -> dict[str, np.ndarray]:
    """Out-of-sample probabilities per split (what is available)."""
    out = {}
    flat = splits.vocab is None and splits.train.x.ndim >= 2 and len(splits.train) and len(splits.train_dev)
    if flat:
        x = np.concatenate([splits.train.x, splits.train_dev.x])
        y = np.concatenate([splits.train.y, splits.train_dev.y])
        probs = cross_validated(x, y, splits.n_classes, seed=seed)
        if probs is not None:
            out["train"], out["train_dev"] = probs[:len(splits.train)], probs[len(splits.train):]
    for name in ("dev", "test"):  # the network's own, from the fit's eval pass over the whole split
        scored = (result.evals or {}).get(name)
        if scored is not None and scored.probabilities is not None and scored.rows is None:
            out[name] = scored.probabilities
    return out


TABLES = ("table", "sql", "digits")  # where a linear reference model's cross-validated probabilities are trusted


def wanted(setting: bool | None, source: str) -> bool:
    """Whether to look for wrong labels: `diagnosis.label_issues`, or by default on tables only. Elsewhere (the
    generated sources, images, text) the linear reference model misses what the network learns, and its
    disagreements would read as wrong labels.

    >>> wanted(None, "digits"), wanted(None, "synthetic"), wanted(True, "synthetic"), wanted(False, "table")
    (True, False, True, False)
    """
    return bool(setting) if setting is not None else source in TABLES


def find(splits, result, workdir: Path, *, seed: int) -> dict | None:
    """Flag each split's likely wrong labels; write the CSV; return {split: {count, rate, interval, n, ...}}."""
    from dlexp.data import Splits

    if splits.task != "classification" or not isinstance(splits, Splits):  # the user's own Datasets: not yet
        return None
    doc, rows = {}, []
    for name, probs in probabilities(splits, result, seed=seed).items():
        split = getattr(splits, name)
        y = np.asarray(split.y)
        if len(y) < 2 or len(np.unique(y)) < 2:
            continue
        try:
            wrong = flag(y, probs)
        except Exception:  # noqa: BLE001 - a degenerate split (one class predicted) is not worth failing a run
            continue
        n, count = len(y), int(wrong.sum())
        entry = {"count": count, "rate": count / n, "interval": list(wilson(count / n, n)), "n": n,
                 "method": "5-fold logistic regression" if name in ("train", "train_dev") else "the network"}
        if name in ("dev", "test"):
            pred = probs.argmax(1)
            entry["mistakes"] = int((pred != y).sum())
            entry["flagged_mistakes"] = int((wrong & (pred != y)).sum())
        doc[name] = entry
        numbers = split.rows if getattr(split, "rows", None) is not None else np.arange(n)
        confidence = 1.0 - probs[np.arange(n), y]
        for i in np.flatnonzero(wrong)[np.argsort(-confidence[wrong], kind="stable")]:
            rows.append((name, int(numbers[i]), int(y[i]), int(probs[i].argmax()), round(float(confidence[i]), 4)))
    if not doc:
        return None
    write(rows, Path(workdir) / "analysis" / CSV, classes=_classes(splits))
    doc = {k: doc[k] for k in SPLIT_NAMES if k in doc}
    return doc


def _classes(splits) -> list | None:
    return (splits.preprocessing or {}).get("classes") if isinstance(splits.preprocessing, dict) else None


def write(rows, path: Path, *, classes=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    name = (lambda c: classes[c]) if classes else (lambda c: c)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["split", "row", "given", "suggested", "confidence"])
        for split, row, given, suggested, confidence in rows:
            out.writerow([split, row, name(given), name(suggested), confidence])
