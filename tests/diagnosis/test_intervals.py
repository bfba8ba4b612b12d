"""Intervals on errors and gaps, the verdict rule that needs them, and what-if mode with split sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dlexp.cli import app
from dlexp.diagnosis import GAPS, Report, SplitErrors, diagnose, intervals, newcombe, recommend, wilson

SIZES = {"train": 8000, "train_dev": 2000, "dev": 2000, "test": 2000}


# ------------------------------------------------------------------------------------------ coverage


@pytest.mark.parametrize("n", [50, 200, 2000])
def test_wilson_covers_the_true_rate_about_95_percent(n):
    rng = np.random.default_rng(n)
    coverages = []
    for p in (0.02, 0.05, 0.1, 0.3, 0.5):
        k = rng.binomial(n, p, size=2000)
        hits = [lo <= p <= hi for lo, hi in (wilson(x / n, n) for x in k)]
        coverages.append(np.mean(hits))
    # Wilson's interval is known to oscillate around 95%, dipping a little for small n * p
    assert min(coverages) >= 0.90, coverages
    assert 0.93 <= np.mean(coverages) <= 0.975, coverages


@pytest.mark.parametrize("n1, n2", [(100, 100), (2000, 200), (2000, 2000)])
def test_newcombe_covers_the_true_difference_about_95_percent(n1, n2):
    rng = np.random.default_rng(n1 + n2)
    coverages = []
    for p1, p2 in ((0.05, 0.02), (0.1, 0.1), (0.3, 0.2), (0.02, 0.08)):
        k1, k2 = rng.binomial(n1, p1, size=1500), rng.binomial(n2, p2, size=1500)
        hits = [lo <= p1 - p2 <= hi for lo, hi in (newcombe(a / n1, n1, b / n2, n2) for a, b in zip(k1, k2))]
        coverages.append(np.mean(hits))
    assert min(coverages) >= 0.91, coverages
    assert 0.93 <= np.mean(coverages) <= 0.98, coverages


def test_wilson_matches_scipy():
    from scipy.stats import binomtest

    for k, n in ((0, 40), (3, 200), (57, 500), (200, 200)):
        ref = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson(k / n, n) == pytest.approx((ref.low, ref.high), abs=1e-9)


def test_intervals_narrow_with_size_and_contain_the_estimate():
    errors = SplitErrors(0.01, 0.08, 0.09, 0.10, 0.11)
    small = intervals(errors, {k: 200 for k in SIZES})
    large = intervals(errors, {k: 20000 for k in SIZES})
    values = {**errors.as_dict(), "avoidable_bias": 0.07, "variance": 0.01, "data_mismatch": 0.01,
              "dev_overfitting": 0.01}
    for name in ("train", "train_dev", "dev", "test", *GAPS):
        for iv in (small, large):
            assert iv[name][0] <= values[name] <= iv[name][1]
        assert large[name][1] - large[name][0] < small[name][1] - small[name][0]


def test_no_sizes_means_no_intervals_and_the_old_rule():
    d = diagnose(SplitErrors(0.01, 0.08, 0.09, 0.10, 0.11))
    assert d.verdict == "avoidable_bias"
    assert d.problems == ("avoidable_bias", "data_mismatch", "variance", "dev_overfitting")
    assert all(g.interval is None for g in d.gaps)
    assert Report(d, ()).document()["intervals"]["dev"] is None


# ------------------------------------------------------------------------------------ the verdict rule


def test_a_gap_counts_only_when_its_lower_end_reaches_the_tolerance():
    d = diagnose(SplitErrors(0.01, 0.08, 0.09, 0.10, 0.11), sizes=SIZES)
    assert d.verdict == "avoidable_bias"
    assert d.problems == ("avoidable_bias",)  # the three 1-point gaps are not confirmed on 2,000 examples
    assert any("data_mismatch" in n and "does not clear" in n for n in d.notes)


def test_largest_gap_uncertain_is_inconclusive_with_how_many_more_examples():
    sizes = {"train": 5000, "train_dev": 5000, "dev": 300, "test": 300}
    d = diagnose(SplitErrors(0.05, 0.05, 0.05, 0.08, 0.08), sizes=sizes)
    assert d.verdict == "inconclusive"
    assert d.problems == ()
    assert d.resolve["gap"] == "data_mismatch"
    assert list(d.resolve["more"]) == ["dev"]
    more = d.resolve["more"]["dev"]
    # that many more dev examples do clear it, one fewer does not
    grown = dict(sizes, dev=300 + more)
    assert diagnose(SplitErrors(0.05, 0.05, 0.05, 0.08, 0.08), sizes=grown).verdict == "data_mismatch"
    assert intervals(SplitErrors(0.05, 0.05, 0.05, 0.08, 0.08), dict(sizes, dev=299 + more))["data_mismatch"][0] \
        < 0.01
    config = {"data": {"name": "synthetic", "n_dev": 300}}
    first = recommend(d, config)[0]
    assert first.problem == "inconclusive"
    assert f"{more:,} more dev examples" in first.action
    assert first.command == f"dlexp train data.n_dev={300 + more}"


def test_confirmed_smaller_problem_still_gets_its_actions_after_the_measurement():
    sizes = {"train": 20000, "train_dev": 20000, "dev": 60, "test": 60}
    d = diagnose(SplitErrors(0.01, 0.03, 0.045, 0.10, 0.10), sizes=sizes)
    assert d.verdict == "inconclusive" and d.problems == ("avoidable_bias", "variance")
    problems = [a.problem for a in recommend(d, None)]
    assert problems[0] == "inconclusive" and "avoidable_bias" in problems


def test_human_range_widens_avoidable_bias():
    errors = SplitErrors(0.0125, 0.04, 0.04, 0.04, 0.04)
    point = diagnose(errors, sizes=SIZES)
    ranged = diagnose(errors, sizes=SIZES, human_range=(0.005, 0.02))
    p, r = point.gap("avoidable_bias").interval, ranged.gap("avoidable_bias").interval
    assert r[0] < p[0] and r[1] > p[1]
    assert ranged.intervals["human"] == (0.005, 0.02)


def test_seed_spread_widens_the_intervals():
    errors = SplitErrors(0.05, 0.06, 0.07, 0.08, 0.08)
    pooled = {k: 3 * v for k, v in SIZES.items()}
    plain = intervals(errors, pooled)
    spread = intervals(errors, pooled, spread={"dev": 0.01, "train": 0.002}, n_seeds=3)
    assert spread["dev"][1] - spread["dev"][0] > plain["dev"][1] - plain["dev"][0]
    assert spread["data_mismatch"][0] < plain["data_mismatch"][0]
    assert spread["test"] == plain["test"]


def test_document_and_metrics_carry_the_intervals():
    d = diagnose(SplitErrors(0.01, 0.08, 0.09, 0.10, 0.11), sizes=SIZES)
    doc = json.loads(json.dumps(Report(d, recommend(d, None), sizes=SIZES).document()))
    assert set(doc["intervals"]) == {"human", "train", "train_dev", "dev", "test", *GAPS}
    assert doc["intervals"]["dev"][0] < 0.10 < doc["intervals"]["dev"][1]
    metrics = Report(d, ()).metrics()
    assert metrics["gap/variance/lo"] < metrics["gap/variance"] < metrics["gap/variance/hi"]
    assert "error/human/lo" not in metrics  # an exact human level has no interval worth logging


# ------------------------------------------------------------------------------------------ what-if


def test_what_if_with_sizes_json():
    args = ["diagnose", "--human", "0.01", "--train", "0.08", "--train-dev", "0.09", "--dev", "0.10",
            "--test", "0.11", "--n-train", "8000", "--n-train-dev", "2000", "--n-dev", "2000", "--n-test", "2000",
            "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["verdict"] == "avoidable_bias" and doc["problems"] == ["avoidable_bias"]
    assert doc["sizes"]["dev"] == 2000
    assert doc["intervals"]["variance"][0] < 0.01


def test_what_if_inconclusive_and_a_human_range_in_the_table():
    args = ["diagnose", "--human", "0.04,0.06", "--train", "0.05", "--train-dev", "0.05", "--dev", "0.08",
            "--test", "0.08", "--n-train", "5000", "--n-train-dev", "5000", "--n-dev", "300", "--n-test", "300"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "inconclusive" in result.output and "more dev examples" in result.output
    assert "95% interval" in result.output and "[4.00%, 6.00%]" in result.output


@pytest.mark.parametrize("args, message", [
    (["--human", "0.01,0.02,0.03"], "--human takes"),
    (["--human", "1.5"], "--human"),
    (["--n-dev", "0"], "--n-dev must be a positive"),
])
def test_what_if_bad_sizes_and_ranges_are_one_line(args, message):
    base = ["diagnose", "--human", "0.01", "--train", "0.08", "--train-dev", "0.09", "--dev", "0.10", "--test", "0.11"]
    merged = base + args if args[0] != "--human" else ["diagnose", *args, *base[3:]]
    result = CliRunner().invoke(app, merged)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------------------ regression: bootstrap


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_bootstrap_covers_the_true_error_about_95_percent(metric):
    from dlexp.diagnosis import bootstrap

    rng = np.random.default_rng(7)
    sigma, n, draws = 3.0, 200, 300
    true = sigma if metric == "rmse" else sigma * np.sqrt(2 / np.pi)  # of |N(0, sigma)| errors
    hits = []
    for i in range(draws):
        e = np.abs(rng.normal(0.0, sigma, n))
        lo, hi = bootstrap.intervals({"dev": e}, metric, 0.0, n_boot=400, seed=i)["dev"]
        hits.append(lo <= true <= hi)
    assert 0.90 <= np.mean(hits) <= 0.98, np.mean(hits)


def test_bootstrap_gaps_cover_the_true_difference_and_the_human_range_widens():
    from dlexp.diagnosis import bootstrap

    rng = np.random.default_rng(11)
    hits = []
    for i in range(200):
        e = {"train": rng.normal(0, 2.0, 300), "train_dev": rng.normal(0, 2.5, 150)}
        lo, hi = bootstrap.intervals(e, "rmse", 1.0, n_boot=400, seed=i)["variance"]
        hits.append(lo <= 0.5 <= hi)  # true RMSEs 2.5 and 2.0
    assert 0.90 <= np.mean(hits) <= 0.98, np.mean(hits)
    e = {s: rng.normal(0, 2.0, 500) for s in ("train", "train_dev", "dev", "test")}
    point, ranged = bootstrap.intervals(e, "rmse", 1.0), bootstrap.intervals(e, "rmse", [0.5, 1.5])
    assert point["human"] == (1.0, 1.0) and ranged["human"] == (0.5, 1.5)
    assert ranged["avoidable_bias"][0] < point["avoidable_bias"][0] < point["avoidable_bias"][1] \
        < ranged["avoidable_bias"][1]
    assert point["train"][0] - 1.0 == pytest.approx(point["avoidable_bias"][0])
    assert point["dev"] == bootstrap.intervals(e, "rmse", 1.0)["dev"]  # seeded: reproducible
    assert bootstrap.intervals({"dev": e["dev"]}, "rmse", 1.0)["train"] is None


def test_bootstrap_resamples_in_a_few_bounded_chunks():
    """10,000 examples, 1,000 replicates: three vectorised draws of at most CHUNK_ELEMENTS indices each, not one
    per replicate, nor one 10-million-index matrix (its time is measured in benchmarks/bootstrap.py)."""
    from dlexp.diagnosis import bootstrap

    class Counting:
        def __init__(self, rng):
            self.rng, self.shapes = rng, []

        def integers(self, low, high, size):
            self.shapes.append(size)
            return self.rng.integers(low, high, size=size)

    e = np.abs(np.random.default_rng(0).normal(0, 1, 10_000))
    rng = Counting(np.random.default_rng(1))
    out = bootstrap.replicates(e, "rmse", 1000, rng)
    assert out.shape == (1000,) and np.isfinite(out).all()
    assert len(rng.shapes) == 3 and sum(rows for rows, _ in rng.shapes) == 1000
    assert all(cols == 10_000 and rows * cols <= bootstrap.CHUNK_ELEMENTS for rows, cols in rng.shapes)
    assert np.median(out) == pytest.approx(bootstrap.statistic(e, "rmse"), abs=0.01)


def test_given_bootstrap_intervals_drive_the_verdict():
    # regression errors in the target's unit: the intervals come from the bootstrap, not from Wilson
    given = {"train": (9.0, 11.0), "train_dev": (10.0, 14.0), "dev": (11.0, 15.0), "test": (11.0, 15.0),
             "avoidable_bias": (4.0, 6.0), "variance": (-0.5, 4.5), "data_mismatch": (-2.0, 2.0),
             "dev_overfitting": (-2.0, 2.0)}
    d = diagnose(SplitErrors(5.0, 10.0, 12.0, 13.0, 13.0), tolerance=1.0, sizes=SIZES, given_intervals=given)
    assert d.intervals["dev"] == (11.0, 15.0) and d.gap("variance").interval == (-0.5, 4.5)
    assert d.problems == ("avoidable_bias",) and d.verdict == "avoidable_bias"
    d = diagnose(SplitErrors(9.5, 10.0, 12.0, 13.0, 13.0), tolerance=1.0, sizes=SIZES,
                 given_intervals=dict(given, avoidable_bias=(-0.5, 1.5)))
    assert d.verdict == "inconclusive"


@pytest.mark.slow
def test_regression_run_has_bootstrap_intervals(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    import pandas as pd

    from dlexp.tracking import client as tracking_client, runs as tracking_runs

    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"sqft": rng.normal(1500, 400, n).round(), "rooms": rng.integers(1, 6, n)})
    df["price"] = (df.sqft * 200 + df.rooms * 5000 + rng.normal(0, 20000, n)).round()
    df.to_csv(tmp_path / "houses.csv", index=False)
    env = dict(os.environ, DLEXP_RUNS_DIR=str(tmp_path / "runs"), COLUMNS="200")
    env.pop("DLEXP_DEBUG", None)
    r = subprocess.run([sys.executable, "-m", "dlexp", "train", "data=table", f"data.path={tmp_path / 'houses.csv'}",
                        "data.target=price", "data.features=[sqft,rooms]", "baseline.human_error=20000",
                        "diagnosis.relative_tolerance=0.05", "trainer.max_epochs=2", "data.min_split_rows=10",
                        "model.hidden=[16]"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    dev_row = next(line for line in r.stdout.splitlines() if "error/dev" in line)
    assert "[" in dev_row  # the terminal table's interval column

    monkeypatch.setenv("DLEXP_RUNS_DIR", str(tmp_path / "runs"))
    run = tracking_runs.load_run()
    doc = run["document"]  # the run's diagnosis.json
    assert doc["task"] == "regression" and doc["metric"] == "rmse"
    iv = doc["intervals"]
    for name in ("train", "train_dev", "dev", "test", *GAPS):
        assert iv[name] is not None, name
        assert iv[name][0] < iv[name][1], name
    for split in ("train", "train_dev", "dev", "test"):
        assert iv[split][0] <= doc["errors"][split] <= iv[split][1] and iv[split][0] > 1000  # target's unit
    for gap in GAPS:
        assert iv[gap][0] <= doc["gaps"][gap] <= iv[gap][1], gap
    assert iv["avoidable_bias"][0] == pytest.approx(iv["train"][0] - 20000)
    for gap in GAPS:  # the verdict rule runs on the bootstrap intervals
        assert (gap in doc["problems"]) == (round(iv[gap][0], 12) >= doc["tolerance"]), gap
    metrics = tracking_client.client().get_run(run["run_id"]).data.metrics
    assert metrics["error/dev/lo"] == pytest.approx(iv["dev"][0])
    assert metrics["gap/variance/hi"] == pytest.approx(iv["variance"][1])

    # `dlexp diagnose` reads the run back with the same bootstrap intervals, not rate intervals
    again = subprocess.run([sys.executable, "-m", "dlexp", "diagnose", "--json"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    redone = json.loads(again.stdout)
    for name in ("train", "train_dev", "dev", "test", *GAPS):
        assert redone["intervals"][name] == pytest.approx(iv[name]), name
    assert redone["verdict"] == doc["verdict"]
