"""baseline.human_error=auto on real tables: scikit-learn's bundled breast-cancer, wine and diabetes data
written to CSV, and a CSV with categorical columns and missing values, each with no baseline given."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_module
from sklearn import datasets

from dlexp import config as configs
from dlexp.data import load
from dlexp.training.baseline import estimate

configs.register()


def bundled(name: str, folder) -> tuple[str, str]:
    """A scikit-learn dataset as a CSV in `folder`: (path, target column)."""
    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return str(path), "target"


def shop(folder, n=600, seed=0) -> tuple[str, str]:
    """Orders with a categorical city and channel, missing values in three columns; returned or not."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"amount": rng.gamma(2.0, 40.0, n).round(2), "items": rng.integers(1, 8, n),
                       "city": rng.choice(["paris", "lyon", "nice"], n), "channel": rng.choice(["web", "shop"], n)})
    risk = 0.02 * df.amount - 1.5 + (df.channel == "web") * 1.2 + (df.city == "nice") * 0.8
    df["returned"] = np.where(rng.random(n) < 1 / (1 + np.exp(-risk)), "yes", "no")
    for column, share in (("amount", 0.05), ("city", 0.08), ("channel", 0.03)):
        df.loc[rng.random(n) < share, column] = None
    path = folder / "shop.csv"
    df.to_csv(path, index=False)
    return str(path), "returned"


def splits_of(path, target, *extra):
    with initialize_config_module("dlexp.configs", version_base="1.3"):
        cfg = compose("config", overrides=["data=table", f"data.path={path}", f"data.target={target}", *extra])
    configs.check(cfg)
    return load(cfg.data, seed=0)


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "diabetes", "shop"])
def test_real_tables_get_a_sane_bracket(tmp_path, name):
    path, target = shop(tmp_path) if name == "shop" else bundled(name, tmp_path)
    splits = splits_of(path, target, *(["data.missing=impute"] if name == "shop" else []))
    est = estimate(splits)
    if splits.task == "classification":
        majority = 1 - np.bincount(splits.train.y).max() / len(splits.train.y)  # always the commonest class
        assert 0 <= est.lower <= est.upper < majority + 0.1  # sane; held to a known truth in the next test
        assert est.reference["train_dev"] <= est.upper
    else:  # diabetes: the disease progression, in its own unit
        assert splits.metric == "rmse"
        assert 0 < est.lower < est.upper < np.std(splits.train.y) * 1.2
    assert est.reference["train"] <= est.reference["train_dev"]  # boosting fits its own training split best
    print(name, splits.sizes(), est.range, est.reference)


def test_a_generated_table_gets_a_bracket_around_its_known_bayes_error(tmp_path):
    """Labels set by a plane through three numeric columns, then 15% of them flipped at random whatever the
    row: the Bayes error is exactly 0.15. The bracket holds it, within two standard errors of the train-dev
    split it is measured on, and is narrow enough to say something (10 points at most)."""
    rng = np.random.default_rng(0)
    n, noise = 4000, 0.15
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    flip = rng.random(n) < noise
    y[flip] = 1 - y[flip]
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["label"] = np.where(y == 1, "yes", "no")
    frame.to_csv(tmp_path / "plane.csv", index=False)
    splits = splits_of(tmp_path / "plane.csv", "label")
    est = estimate(splits)
    se = (noise * (1 - noise) / splits.sizes()["train_dev"]) ** 0.5
    assert est.lower - 2 * se <= noise <= est.upper + 2 * se, (est.lower, est.upper)
    assert est.upper - est.lower <= 0.1 and est.upper < noise + 0.1, (est.lower, est.upper)


def _run_json(run_dlexp, *args):
    r = run_dlexp(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow
def test_a_table_with_no_baseline_given_trains_diagnoses_and_logs_the_estimate(runs_dir, tmp_path, dlexp_proc):
    run_dlexp = dlexp_proc
    path, target = bundled("breast_cancer", tmp_path)  # the README's example, one epoch
    r = run_dlexp("train", "data=table", f"data.path={path}", f"data.target={target}", "trainer.max_epochs=1")
    assert r.returncode == 0, r.stderr
    assert "ESTIMATED Bayes error" in r.stdout and "gradient boosting (scikit-learn defaults) reaches" in r.stdout
    assert "gradient boosting alone [" in r.stdout and "the network alone [" in r.stdout
    doc = _run_json(run_dlexp, "diagnose", "--json")
    baseline = doc["baseline"]
    assert baseline["source"] == "estimated"
    assert doc["intervals"]["human"] == pytest.approx([baseline["lower"], baseline["upper"]])
    assert 0 <= baseline["lower"] < doc["errors"]["human"] < baseline["upper"] < 0.5
    assert set(baseline["reference"]) == {"train", "train_dev", "dev"}
    # after training the network joins the estimate: the lower of both upper ends; a lower end at most theirs
    boosting, network = baseline["brackets"]["gradient boosting"], baseline["brackets"]["the network"]
    assert baseline["upper"] == pytest.approx(min(boosting[1], network[1]))
    assert baseline["lower"] <= min(boosting[0], network[0])
    assert "the network's train-dev errors" in baseline["method"]

    import mlflow

    run = mlflow.MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}").get_run(doc["run_id"])
    assert run.data.tags["dlexp.human_source"] == "estimated" and "plug-in" in run.data.tags["dlexp.bayes_method"]
    assert run.data.tags["dlexp.bayes_method"] == baseline["method"]
    assert run.data.metrics["error/human/hi"] == pytest.approx(baseline["upper"])
    assert run.data.metrics["error/human/lo"] == pytest.approx(baseline["lower"])
    assert run.data.metrics["error/human"] == pytest.approx((baseline["lower"] + baseline["upper"]) / 2)
    assert run.data.metrics["reference/dev"] == pytest.approx(baseline["reference"]["dev"])

    page = tmp_path / "report.html"  # the HTML report names the estimate and its method too
    assert run_dlexp("report", doc["run_id"], "--out", str(page)).returncode == 0
    html = page.read_text()
    assert "ESTIMATED Bayes error" in html and "the network alone [" in html
    assert "the lower of gradient boosting&#x27;s and the network&#x27;s train-dev errors" in html

    given = _run_json(run_dlexp, "diagnose", "--human", "0.1", "--json")  # the user's number wins over the estimate
    assert given["errors"]["human"] == 0.1 and given["baseline"]["source"] == "given"

    path, target = shop(tmp_path)  # categorical columns and missing values
    r = run_dlexp("train", "data=table", f"data.path={path}", f"data.target={target}", "data.missing=impute",
                  "baseline.human_error=none", "trainer.max_epochs=1", "model.hidden=[16]")
    assert r.returncode == 0, r.stderr
    assert "no baseline (baseline.human_error=none)" in r.stdout
    doc = _run_json(run_dlexp, "diagnose", "--json")
    assert doc["errors"]["human"] is None and doc["baseline"] == {"source": "none"}
    assert doc["verdict"] != "avoidable_bias"


@pytest.mark.slow
def test_text_gets_the_networks_own_bracket_with_no_boosting_on_token_ids(runs_dir, tmp_path, dlexp_proc):
    from dlexp.data.examples import write_reviews

    files = write_reviews(tmp_path, labelled=300, unlabelled=10)
    r = dlexp_proc("train", "data=text", f"data.path={files['labelled']}", "data.max_length=24", "model=gru",
                   "model.embed=8", "model.hidden_size=16", "trainer.max_epochs=1")
    assert r.returncode == 0, r.stderr
    assert "gradient boosting reads no token sequences" in r.stdout and "ESTIMATED Bayes error" in r.stdout
    doc = _run_json(dlexp_proc, "diagnose", "--json")
    baseline = doc["baseline"]
    assert baseline["source"] == "estimated" and baseline["method"].startswith("the network alone")
    assert list(baseline["brackets"]) == ["the network"] and not baseline["reference"]
    assert 0 <= baseline["lower"] <= baseline["upper"] <= 1
    assert doc["intervals"]["human"] == pytest.approx([baseline["lower"], baseline["upper"]])
