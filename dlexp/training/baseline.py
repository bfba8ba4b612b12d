"""`baseline.human_error` for a training job: `baseline` before training, `refine` after it.

Where the human level is unknown (`auto` on a source without a known Bayes error), the reference model,
scikit-learn's gradient boosting with default settings fitted on the training split, gives the Bayes-error
bracket before training; `refine` (the core's, `dlexp.diagnosis.bayes`, where the method is described)
completes it with the network's own figures.

>>> rng = np.random.default_rng(0)
>>> def draw(n):  # two Gaussian classes 2 apart on one of 5 features: Bayes error Phi(-1) = 0.159
...     y = rng.integers(0, 2, n); x = rng.normal(size=(n, 5)); x[:, 0] += 2.0 * y - 1.0; return x, y
>>> lo, hi, _ = bracket(*draw(2000), *draw(1000))
>>> lo < 0.159 < hi
True
"""

from __future__ import annotations

import numpy as np

from dlexp.diagnosis.bayes import (METHODS, OWN, REFERENCE, TOKENS, Estimate, check, check_own,
                                   classification_ends, refine, regression_error, regression_upper)
from dlexp.diagnosis.splits import Z95

__all__ = ["baseline", "bracket", "errors", "estimate", "reference_model", "refine"]

ONE_THREAD_BELOW = 50_000  # training rows under which boosting runs on one thread (fast anyway; OpenMP's
                           # spinning threads slow it tenfold and more on a machine whose cores are busy)


def _flat(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x.reshape(len(x), -1) if x.ndim != 2 else x


def reference_model(task: str, *, seed: int = 0):
    """The reference model with scikit-learn's default settings (early stopping on above 10,000 rows)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    return cls(random_state=seed)


def bracket(x_train, y_train, x_train_dev, y_train_dev, *, task: str = "classification",
            metric: str = "error_rate", seed: int = 0, z: float = Z95):
    """(lower, upper, fitted reference model) for the Bayes error of the distribution of (x, y).

    Classification errors are error rates; regression errors are RMSE or MAE in y's unit (`metric`).
    """
    x_train, x_train_dev = _flat(x_train), _flat(x_train_dev)
    y_train, y_train_dev = np.asarray(y_train), np.asarray(y_train_dev)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1 if len(y_train) < ONE_THREAD_BELOW else None, user_api="openmp"):
        model = reference_model(task, seed=seed).fit(x_train, y_train)
    if task == "classification":
        proba = model.predict_proba(x_train_dev)  # (n, classes seen in training)
        lower, upper = classification_ends(proba.max(1), model.classes_[proba.argmax(1)] != y_train_dev, z)
    else:
        residuals = y_train_dev.astype(np.float64) - model.predict(x_train_dev)
        upper = regression_upper(np.abs(residuals), metric, z)
        lower = regression_error(y_train.astype(np.float64) - model.predict(x_train), metric)
    return min(lower, upper), upper, model


def errors(model, split, *, task: str, metric: str) -> float:
    """The reference model's error on one split, in the diagnosis's unit."""
    x, y = _flat(split.x), np.asarray(split.y)
    if len(y) == 0:
        return float("nan")
    if task == "classification":
        return float(np.mean(model.predict(x) != y))
    return regression_error(y.astype(np.float64) - model.predict(x), metric)


def estimate(splits, *, seed: int = 0) -> Estimate:
    """The estimated Bayes error of `splits`' training distribution (from train and train-dev only), with the
    reference model's errors on train, train-dev and dev for the user to compare the network with."""
    check(splits)
    task, metric = splits.task, splits.metric
    lower, upper, model = bracket(splits.train.x, splits.train.y, splits.train_dev.x, splits.train_dev.y,
                                  task=task, metric=metric, seed=seed)
    reference = {name: errors(model, getattr(splits, name), task=task, metric=metric)
                 for name in ("train", "train_dev", "dev")}
    return Estimate(lower=lower, upper=upper, method=METHODS[task].format(metric=metric.upper()), metric=metric,
                    reference=reference)


def baseline(value, splits, *, seed: int = 0) -> tuple[float | None, tuple[float, float] | None, dict]:
    """Resolve `baseline.human_error` for these splits: (human level, its range or None, the account of where
    it came from for the report). A number or range given by the user wins; `auto` takes the source's known
    Bayes error, or estimates it where the source has none (tables, sql, npz, images, text); `none` sets no
    baseline. An estimate (`"source": "estimated"`) is completed after training by `refine`; for token
    sequences it is made there alone (human level None until then)."""
    from dlexp import config as configs

    unbounded = splits.task == "regression"
    source = configs.human_source(value)
    if source == "auto" and splits.bayes_error is None and splits.needs_human:
        if getattr(splits, "datasets", None) is not None:  # the user's own Datasets, never held as arrays
            check_own(splits)
            print(f"dlexp: {splits.needs_human} has no known Bayes error: estimating it from the network's own "
                  f"train-dev figures once it is trained ({OWN}; baseline.human_error=auto)", flush=True)
            return None, None, {"source": "estimated", "lower": None, "upper": None, "method": "",
                                "metric": splits.metric, "reference": {}, "why": OWN}
        if splits.vocab is not None:  # token ids are no features: the network's own bracket, after training
            check(splits)
            print(f"dlexp: {splits.needs_human} has no known Bayes error: estimating it from the network's own "
                  f"train-dev figures once it is trained ({TOKENS}; baseline.human_error=auto)", flush=True)
            return None, None, {"source": "estimated", "lower": None, "upper": None, "method": "",
                                "metric": splits.metric, "reference": {}, "why": TOKENS}
        print(f"dlexp: {splits.needs_human} has no known Bayes error: estimating it with {REFERENCE} now and "
              "the network once it is trained (baseline.human_error=auto, training and train-dev splits only)",
              flush=True)
        est = estimate(splits, seed=seed)
        return est.point, est.range, est.document()
    human = configs.human_error(value, splits.bayes_error, required=splits.needs_human, unbounded=unbounded)
    account = {"source": "known" if source == "auto" else source}
    return human, configs.human_range(value, unbounded=unbounded), account
