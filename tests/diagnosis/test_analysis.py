"""Error analysis: per-class errors, rising classes, worst mistakes; and one small run that logs it all."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from dlexp.diagnosis.analysis import analyse, per_class_error, write_worst


def test_per_class_error_and_rising_classes():
    rng = np.random.default_rng(0)
    y = {s: rng.integers(0, 3, size=600) for s in ("train", "train_dev", "dev", "test")}
    preds = {}
    for split, labels in y.items():
        pred = labels.copy()
        # class 2 goes wrong only on the target distribution (dev/test): where a mismatch would live
        if split in ("dev", "test"):
            pred[(labels == 2) & (rng.random(600) < 0.5)] = 0
        pred[rng.random(600) < 0.05] = 1
        preds[split] = (pred, rng.uniform(0.34, 1.0, size=600))
    summary, rows = analyse(y, preds, 3, worst=10)
    assert summary["per_class"]["dev"][2] > 0.4 > summary["per_class"]["train_dev"][2]
    assert summary["rising"][0]["class"] == 2
    assert np.array(summary["confusion_dev"]).sum() == 600
    assert summary["confusion_dev"][2][0] > 50
    from sklearn.metrics import confusion_matrix

    assert summary["confusion_dev"] == confusion_matrix(y["dev"], preds["dev"][0], labels=[0, 1, 2]).tolist()
    assert len(rows) == 10
    confidences = [r["confidence"] for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    for r in rows:
        assert y["dev"][r["row"]] == r["true"] != r["predicted"] == preds["dev"][0][r["row"]]
    json.dumps(summary)  # goes into diagnosis.json as it is


def test_per_class_error_absent_class_is_none():
    assert per_class_error(np.array([1, 1]), np.array([1, 0]), 3) == [None, 0.5, None]


def test_worst_csv(tmp_path):
    path = write_worst([{"row": 3, "true": 1, "predicted": 0, "confidence": 0.9}], tmp_path / "w.csv")
    assert list(csv.DictReader(open(path))) == [{"row": "3", "true": "1", "predicted": "0", "confidence": "0.9"}]


def test_terminal_summary():
    import io

    from rich.console import Console

    from dlexp.render import terminal as render

    y = {s: np.array([0, 0, 1, 1, 2, 2]) for s in ("train", "train_dev", "dev", "test")}
    preds = {s: (np.array([0, 0, 1, 1, 2, 2]), np.full(6, 0.9)) for s in y}
    preds["dev"] = (np.array([0, 0, 1, 1, 0, 0]), np.array([0.9, 0.9, 0.9, 0.9, 0.95, 0.6]))
    summary, _ = analyse(y, preds, 3)
    summary["worst_dev_csv"] = "analysis/worst_dev_mistakes.csv"
    buffer = io.StringIO()
    render.error_analysis(summary, out=Console(file=buffer, width=200))
    text = buffer.getvalue()
    assert "error by true class" in text and "100.00%" in text
    assert "class 2 (0.0% -> 100.0%, +100.0%)" in text
    assert "2 dev mistakes; the surest: dev row 4, true 2, predicted 0 at 0.95" in text
