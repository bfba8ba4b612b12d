"""Error analysis: per-class errors, rising classes, worst mistakes; and one small run that logs it all."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from dlexp.analysis import analyse, per_class_error, write_worst


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


@pytest.mark.slow
def test_a_run_logs_intervals_and_error_analysis(runs_dir):
    from typer.testing import CliRunner

    from dlexp.cli import app

    args = ["train", "data.n_train=400", "data.n_train_dev=200", "data.n_dev=200", "data.n_test=200",
            "data.shift=1.5", "trainer.max_epochs=1", "model.hidden=[16]"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "95% interval" in result.output and "error by true class" in result.output
    assert "rises most from train-dev to dev" in result.output

    result = CliRunner().invoke(app, ["diagnose", "--json"])
    doc = json.loads(result.output)
    assert doc["intervals"]["dev"][0] < doc["errors"]["dev"] < doc["intervals"]["dev"][1]
    assert len(doc["analysis"]["per_class"]["dev"]) == 4
    artifacts = runs_dir / "artifacts"
    run = artifacts.glob(f"{doc['run_id']}/artifacts")
    folder = next(iter(run))
    assert (folder / "plots" / "confusion_dev.png").stat().st_size > 1000
    rows = list(csv.DictReader(open(folder / "analysis" / "worst_dev_mistakes.csv")))
    assert rows and set(rows[0]) == {"row", "true", "predicted", "confidence"}
