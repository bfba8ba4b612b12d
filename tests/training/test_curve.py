"""Learning curves, seed groups and the HTML report: the pure parts, then one small curve and one seed group."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dlexp.diagnosis import powerlaw
from dlexp.cli import app
from dlexp.diagnosis import Report, SplitErrors, diagnose
from dlexp.training.groups import curve_sizes, parse_seeds, pool, width_factors

TINY = ["data.n_train=400", "data.n_train_dev=200", "data.n_dev=200", "data.n_test=200", "trainer.max_epochs=1",
        "model.hidden=[16]", "data.batch_size=128"]


def test_power_law_recovers_its_parameters_and_judges():
    n = np.array([250, 500, 1000, 2000, 4000])
    falling = powerlaw.judge(n, 0.05 + 4.0 * n ** -0.6, tolerance=0.01)
    assert falling["helps"] is True
    assert falling["fit"]["b"] == pytest.approx(0.6, abs=0.02)
    assert falling["extrapolation"]["10x"] == pytest.approx(0.05 + 4.0 * 40000 ** -0.6, abs=1e-3)
    flat = powerlaw.judge(n, [0.30, 0.21, 0.2, 0.2, 0.2], tolerance=0.01, train=[0.19] * 5)
    assert flat["helps"] is False and "bias" in flat["why"]
    assert powerlaw.judge([100, 200], [0.3, 0.2], tolerance=0.01)["helps"] is None


def test_floor_never_below_the_human_level():
    n = np.array([100, 200, 400, 800])
    fit = powerlaw.fit(n, 0.5 * n ** -0.3, floor_min=0.05)
    assert fit["floor"] >= 0.05 - 1e-9


def test_sizes_and_seeds_parsing():
    assert curve_sizes(1000, fractions=[0.1, 0.5, 1.0]) == [100, 500, 1000]
    assert width_factors(points=3) == [0.5, 1.0, 2.0]
    assert parse_seeds("2", 5) == [5, 6]
    from dlexp.errors import ConfigError

    for bad in ("0", "[1,1]", "x"):
        with pytest.raises(ConfigError):
            parse_seeds(bad, 0)


def test_pool_means_sizes_and_spread():
    class Cfg:
        class diagnosis:
            tolerance = 0.01

        class baseline:
            human_error = 0.05

    sizes = {"train": 1000, "train_dev": 500, "dev": 500, "test": 500}
    children = []
    for i, dev in enumerate((0.10, 0.14, 0.12)):
        d = diagnose(SplitErrors(0.05, 0.06, 0.07, dev, 0.12), sizes=sizes)
        children.append(Report(d, (), run_id=f"r{i}", sizes=sizes))
    report = pool(children, [0, 1, 2], Cfg, ["seeds=3"], "parent")
    assert report.diagnosis.errors.dev == pytest.approx(0.12)
    assert report.sizes["dev"] == 1500
    assert report.seeds["spread"]["dev"] == pytest.approx(0.02)
    assert report.seeds["runs"] == ["r0", "r1", "r2"]
    single = diagnose(SplitErrors(0.05, 0.06, 0.07, 0.12, 0.12), sizes={k: 3 * v for k, v in sizes.items()})
    assert report.diagnosis.intervals["dev"][0] < single.intervals["dev"][0]  # the spread widens it
    assert report.document()["seeds"]["seeds"] == [0, 1, 2]


@pytest.mark.slow
def test_curve_three_points_json_and_report(runs_dir, tmp_path):
    result = CliRunner().invoke(app, ["curve", *TINY, "--fractions", "0.25,0.5,1", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{\n"):])  # CliRunner mixes stderr in
    assert [p["n_train"] for p in doc["points"]] == [100, 200, 400]
    # three points: none left to check a fit on, so nothing is extrapolated
    assert doc["more_data_helps"] is None and doc["extrapolation"] is None
    assert "no trend to extrapolate yet" in doc["why"]
    assert all(p["intervals"]["dev"] for p in doc["points"])
    parent = doc["run_id"]
    plots = runs_dir / "artifacts" / parent / "artifacts" / "plots"
    assert (plots / "learning_curve_data.png").stat().st_size > 1000

    result = CliRunner().invoke(app, ["diagnose", parent, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["curve"]["axis"] == "data"

    out = tmp_path / "curve.html"
    result = CliRunner().invoke(app, ["report", parent, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "Learning curve over data" in text and "data:image/png;base64," in text
    assert "Child runs" in text and text.count("<tr>") > 10
    assert (runs_dir / "artifacts" / parent / "artifacts" / "report.html").exists()


@pytest.mark.slow
def test_seed_group_under_a_parent_run(runs_dir):
    result = CliRunner().invoke(app, ["train", "seeds=2", *TINY])
    assert result.exit_code == 0, result.output
    assert "2 seeds pooled" in result.output and "seed-to-seed" in result.output
    from dlexp.tracking import runs as tracking_runs

    rows = tracking_runs.list_runs(None, limit=10)
    assert len(rows) == 3
    # named for the MLflow UI: the group after its model, data and size; each child nested under it by position
    parent = next(r for r in rows if r["run_name"] == "mlp · synthetic · 2 seeds")
    children = tracking_runs.child_runs(None, parent["run_id"])
    assert [c["run_name"] for c in children] == ["seed 1 of 2", "seed 2 of 2"]
    doc = json.loads(CliRunner().invoke(app, ["diagnose", parent["run_id"], "--json"]).output)
    assert doc["seeds"]["runs"] == [c["run_id"] for c in children]
    assert doc["errors"]["dev"] == pytest.approx(np.mean([c["errors"]["dev"] for c in children]))
    assert doc["sizes"]["dev"] == 400
    assert "95% interval" in result.output
    # every child carries its own error analysis: per-class errors, the confusion matrix and the worst mistakes
    child = runs_dir / "artifacts" / children[0]["run_id"] / "artifacts"
    assert (child / "plots" / "confusion_dev.png").stat().st_size > 1000
    rows = list(csv.DictReader(open(child / "analysis" / "worst_dev_mistakes.csv")))
    assert rows and set(rows[0]) == {"row", "true", "predicted", "confidence"}
    child_doc = json.loads((child / "diagnosis.json").read_text())
    assert len(child_doc["analysis"]["per_class"]["dev"]) == 4 and child_doc["analysis"]["confusion_dev"]
