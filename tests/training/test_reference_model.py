"""The estimated Bayes-error bracket of baseline.human_error=auto: coverage on data with a known Bayes error
(a small version of benchmarks/bayes_coverage.py) and the one-line errors where it cannot be estimated."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.datasets import make_friedman1

from dlexp.data import Split, Splits
from dlexp.diagnosis.bayes import combine, network_bracket
from dlexp.training.baseline import bracket, errors, estimate
from dlexp.errors import DataError


def two_gaussians(rng, n, d=10, mu=1.0):
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, d))
    x[:, 0] += np.where(y == 1, mu, -mu)
    return x, y


def friedman(rng, n, noise=1.0):
    return make_friedman1(n, n_features=10, noise=noise, random_state=int(rng.integers(2**31)))


@pytest.mark.parametrize("task, metric, draw, truth, widest", [
    ("classification", "error_rate", two_gaussians, float(norm.cdf(-1.0)), 0.25),  # Bayes error 0.159; chance 0.5
    ("regression", "rmse", friedman, 1.0, 2.5),      # Bayes RMSE = the noise, 1; std of y about 5
])
def test_the_bracket_contains_the_known_bayes_error(task, metric, draw, truth, widest):
    hits, widths = 0, []
    for rep in range(8):
        rng = np.random.default_rng(rep)
        lo, hi, _ = bracket(*draw(rng, 500), *draw(rng, 250), task=task, metric=metric, seed=rep)
        hits += lo <= truth <= hi
        widths.append(hi - lo)
    assert hits >= 7, f"{hits} of 8 brackets hold the Bayes error {truth}"
    assert 0 < np.mean(widths) < widest  # informative: under half of [0, chance] or [0, std of y]


def _benchmark():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bayes_coverage.py"
    spec = importlib.util.spec_from_file_location("bayes_coverage", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_with_the_network_the_bracket_holds_data_synthetics_rings_which_boosting_cannot_learn():
    """data=synthetic's task, 3 classes, 10% of labels flipped (Bayes error 0.10): boosting's bracket alone lies
    far above the truth; combined with dlexp's default network (trained as `dlexp train data=table` would)
    it holds it, and its upper end comes down to what the network reaches."""
    import torch

    bench = _benchmark()
    torch.set_num_threads(1)
    cfg = bench.default_network_config()
    draw, truth = bench.rings(3, 10, 0.1)
    alone, combined = [], []
    for rep in range(3):
        rng = np.random.default_rng(100 + rep)
        x_tr, y_tr = draw(rng, 4200)
        x_td, y_td = draw(rng, 1800)
        lo, hi, model = bracket(x_tr, y_tr, x_td, y_td, seed=rep)
        alone.append((lo, hi))
        net = bench.network(cfg, x_tr, y_tr, x_td, y_td, task="classification", metric="error_rate", seed=rep)
        own = network_bracket("classification", confidence=net["confidence"], wrong=net["wrong"])
        combined.append(combine("classification", (lo, hi, errors(model, Split(x_td, y_td), task="classification",
                                                                  metric="error_rate")), own))
    assert all(lo > truth for lo, _ in alone), alone  # boosting cannot learn it: its plug-in is no bound
    assert all(lo <= truth <= hi for lo, hi in combined), combined
    assert all(c[1] < a[1] - 0.1 for c, a in zip(combined, alone))  # the network's upper end is far lower


def test_refine_puts_the_networks_figures_beside_boostings_and_ignores_a_diverged_network():
    from dlexp.training.baseline import baseline, refine
    from dlexp.training.fit import FitResult

    rng = np.random.default_rng(0)
    parts = [Split(x.astype(np.float32), y) for x, y in (two_gaussians(rng, n) for n in (800, 300, 300, 300))]
    splits = Splits(*parts, n_classes=2)
    _, _, document = baseline("auto", dataclasses.replace(splits, needs_human="data=table"))
    y = splits.train_dev.y
    wrong = rng.random(len(y)) < 0.2  # a network wrong on a fifth of train-dev, 80% sure of each answer
    result = FitResult({"train": 0.15, "train_dev": float(wrong.mean())},
                       predictions={"train_dev": (np.where(wrong, 1 - y, y), np.full(len(y), 0.8, np.float32))})
    human, (lo, hi), refined = refine(document, splits, result)
    boosting, network = refined["brackets"]["gradient boosting"], refined["brackets"]["the network"]
    assert boosting == [document["lower"], document["upper"]]
    assert network[0] == pytest.approx(0.2) and network[1] > wrong.mean()  # plug-in 1 - 0.8; Wilson's upper end
    assert hi == min(boosting[1], network[1]) and lo <= min(boosting[0], network[0]) and human == (lo + hi) / 2
    assert refined["method"].startswith("upper: the lower of gradient boosting's and the network's")

    diverged = FitResult(result.errors, predictions={"train_dev": (y, np.full(len(y), np.nan, np.float32))})
    assert refine(document, splits, diverged)[2] == document  # boosting's bracket stays as it was

    # regression: the lower of both upper ends, the lower of both training-split errors
    parts = [Split(x.astype(np.float32), y.astype(np.float32))
             for x, y in (friedman(rng, n) for n in (800, 300, 300, 300))]
    splits = Splits(*parts, n_classes=1, task="regression", metric="rmse", needs_human="data=table")
    _, _, document = baseline("auto", splits)
    residuals = np.abs(rng.normal(scale=1.1, size=300))  # a network about as good as the noise allows (1.0)
    result = FitResult({"train": 0.9, "train_dev": float(np.sqrt(np.mean(residuals ** 2)))},
                       abs_errors={"train_dev": residuals})
    _, (lo, hi), refined = refine(document, splits, result)
    network = refined["brackets"]["the network"]
    assert network[0] == 0.9 and lo == min(0.9, document["lower"]) and hi == min(network[1], document["upper"])
    assert "training-split RMSE" in refined["method"]


def splits_of(y_train, y_other=None, n_features=3, task="classification", metric="error_rate"):
    rng = np.random.default_rng(0)
    y_other = y_train if y_other is None else y_other

    def split(y):
        return Split(rng.normal(size=(len(y), n_features)).astype(np.float32), np.asarray(y))
    return Splits(split(y_train), split(y_other), split(y_other), split(y_other),
                  n_classes=1 if task == "regression" else int(max(y_train)) + 1, task=task, metric=metric)


def test_estimate_keeps_the_reference_models_errors_on_train_train_dev_and_dev():
    rng = np.random.default_rng(0)
    parts = [Split(*(lambda xy: (xy[0].astype(np.float32), xy[1]))(two_gaussians(rng, n))) for n in (800, 300, 300, 300)]
    est = estimate(Splits(*parts, n_classes=2))
    assert 0 <= est.lower < est.upper <= 1
    assert set(est.reference) == {"train", "train_dev", "dev"}
    assert est.reference["train"] <= est.reference["dev"]  # boosting fits its own training split best
    assert "plug-in" in est.method and est.document()["source"] == "estimated"


@pytest.mark.parametrize("splits, words", [
    (splits_of(np.arange(16) % 2), "16 and 16 rows"),
    (splits_of(np.zeros(100, np.int64)), "single class"),
    (splits_of(np.full(100, 3.5, np.float32), task="regression", metric="rmse"), "constant"),
])
def test_bad_input_is_one_line_suggesting_a_number(splits, words):
    with pytest.raises(DataError) as info:
        estimate(splits)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert "baseline.human_error=0" in message
