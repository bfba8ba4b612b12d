"""Error analysis for classification: where the errors live, from the predictions of the eval pass.

numpy and scikit-learn only (no torch): per-class error on every split, the dev confusion matrix, the
classes whose error rises most from train-dev to dev (where a data mismatch lives), and the dev mistakes
the model was most sure of. The summary goes into the JSON document under "analysis"; the worst mistakes
are written as a CSV and the confusion matrix is drawn by dlexp.render.plots.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dlexp.diagnosis.splits import SPLITS

WORST_CSV = "worst_dev_mistakes.csv"


def per_class_error(y: np.ndarray, pred: np.ndarray, n_classes: int) -> list[float | None]:
    """Error rate among the examples of each true class; None for a class absent from the split.

    >>> per_class_error(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 3)
    [0.5, 0.0, None]
    """
    counts = np.bincount(y, minlength=n_classes)
    wrong = np.bincount(y[pred != y], minlength=n_classes)
    return [float(w / c) if c else None for w, c in zip(wrong, counts)]


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix: row = true class, column = predicted class (scikit-learn's `confusion_matrix` with
    labels 0..n-1, counted with one bincount instead of loading scikit-learn at the end of every run).

    >>> confusion(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3).tolist()
    [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    """
    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def analyse(labels: Mapping[str, np.ndarray], predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
            n_classes: int, *, top: int = 3, worst: int = 50) -> tuple[dict, list[dict]]:
    """(summary for the JSON document, the `worst` dev mistakes, most confident first).

    `labels[split]` are the true classes, `predictions[split]` = (predicted class, top probability).
    """
    summary: dict = {"classes": list(range(n_classes)), "per_class": {}, "class_sizes": {}}
    for split in SPLITS:
        if split not in predictions:
            continue
        y, (pred, _) = labels[split], predictions[split]
        summary["per_class"][split] = per_class_error(y, pred, n_classes)
        summary["class_sizes"][split] = np.bincount(y, minlength=n_classes).tolist()
    rising = []
    per = summary["per_class"]
    if "train_dev" in per and "dev" in per:
        for c in range(n_classes):
            a, b = per["train_dev"][c], per["dev"][c]
            if a is not None and b is not None:
                rising.append({"class": c, "train_dev": a, "dev": b, "rise": b - a,
                               "n_dev": summary["class_sizes"]["dev"][c]})
        rising.sort(key=lambda r: -r["rise"])
    summary["rising"] = rising[:top]
    rows: list[dict] = []
    if "dev" in predictions:
        y, (pred, conf) = labels["dev"], predictions["dev"]
        summary["confusion_dev"] = confusion(y, pred, n_classes).tolist()
        wrong = np.flatnonzero(pred != y)
        order = wrong[np.argsort(-conf[wrong], kind="stable")][:worst]
        rows = [{"row": int(i), "true": int(y[i]), "predicted": int(pred[i]), "confidence": round(float(conf[i]), 4)}
                for i in order]
        summary["worst_dev"] = rows[:5]
        summary["n_dev_mistakes"] = int(len(wrong))
    return summary, rows


def write_worst(rows: list[dict], path: Path) -> Path:
    """The worst dev mistakes as CSV: row (index in the dev split), true, predicted, confidence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["row", "true", "predicted", "confidence"])
        writer.writeheader()
        writer.writerows(rows)
    return path
