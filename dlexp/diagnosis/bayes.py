"""An estimated bracket [lower, upper] of the Bayes error, for data whose human-level error nobody knows:
the method, its pure parts (the plug-in and Wilson ends, the network's own bracket, the combining rule,
`refine`) and the checks. numpy only; the reference model is fitted by `dlexp.training.baseline`.

Andrew Ng's recipe measures avoidable bias against human-level error only as a stand-in for the Bayes
error. For a table, sensor data or a warehouse query there is no human level, so `baseline.human_error=auto`
estimates the Bayes error of the training distribution from the training and train-dev splits alone (never
dev or test), with a strong off-the-shelf reference model: scikit-learn's HistGradientBoostingClassifier /
HistGradientBoostingRegressor with default settings, fitted on the training split.

- upper end: the reference model's train-dev error, raised by its sampling noise (the upper end of a 95%
  interval: Wilson's for an error rate, a normal interval on the mean squared or absolute residual for
  RMSE and MAE). No Bayes error lies above what some model reaches on held-out data.
- lower end, classification: the reference model's plug-in estimate on train-dev, the mean of
  1 - (its highest predicted probability), lowered by its own sampling noise. Were the predicted
  probabilities the true posterior, this would be the Bayes error; boosting's probabilities are
  over-confident, which keeps it below the truth.
- lower end, regression: the reference model's error on its own training split (resubstitution), which is
  optimistic because the model has seen those targets.

After training, `refine` narrows or corrects that bracket with the network itself, a second model fitted on
the training split alone and measured on train-dev:

- upper end: the lower of the two models' upper ends (each a 95% upper end of a train-dev error).
- lower end, classification: the lower of the two models' plug-in estimates, lowered by the gap between
  their train-dev errors. Where one model learns what the other cannot (boosting on data=synthetic's rings:
  52% against the network's 25%, for a Bayes error of 10%), the better one may itself be as far from the
  best model, and neither plug-in is a bound; where they agree the gap is small and the bracket stays.
- lower end, regression: the lower of the two models' training-split errors.

Data gradient boosting cannot read as features (token ids, data=text) get the network's own bracket alone.

benchmarks/bayes_coverage.py checks both brackets on generated data whose Bayes error is known; the
combined one holds the truth in every setting there, the boosting-alone one misses where boosting cannot
learn the task. The 1-nearest-neighbour bound of Cover and Hart and a nearest-neighbour noise estimate
(the delta test) were tried for the lower end and overshoot the truth once noise features are present.

>>> combine("classification", (0.05, 0.20, 0.15), (0.08, 0.12, 0.09))  # (lower, upper, train-dev error) each
(0.0, 0.12)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dlexp.diagnosis.intervals import wilson
from dlexp.diagnosis.splits import Z95
from dlexp.errors import DataError

MIN_TRAIN = 20      # rows of the training split the estimate needs (the bracket widens as they shrink)
MIN_TRAIN_DEV = 10  # rows of the train-dev split
REFERENCE = "gradient boosting"  # how the reference model is named in the output
NETWORK = "the network"
METHODS = {
    "classification": "lower: gradient boosting's plug-in estimate on train-dev (mean 1 - max probability); "
                      "upper: its train-dev error (95% upper end)",
    "regression": "lower: gradient boosting's training-split {metric} (resubstitution); "
                  "upper: its train-dev {metric} (95% upper end)",
}
# after training, with the network (`refine`)
COMBINED = {
    "classification": "upper: the lower of gradient boosting's and the network's train-dev errors (95% upper end); "
                      "lower: the lower of their plug-in estimates on train-dev (mean 1 - max probability), "
                      "minus the gap between their train-dev errors",
    "regression": "upper: the lower of gradient boosting's and the network's train-dev {metric} (95% upper end); "
                  "lower: the lower of their training-split {metric} (resubstitution)",
}
NETWORK_ONLY = {
    "classification": "the network alone ({why}): lower: its plug-in estimate on train-dev (mean 1 - max "
                      "probability); upper: its train-dev error (95% upper end)",
    "regression": "the network alone ({why}): lower: its training-split {metric}; upper: its train-dev "
                  "{metric} (95% upper end)",
}
TOKENS = "gradient boosting reads no token sequences"
OWN = "your own Datasets are read batch by batch, so no reference model is fitted on them"


@dataclass(frozen=True)
class Estimate:
    """An estimated Bayes error: the bracket, the method that gave it and the reference model's errors."""

    lower: float
    upper: float
    method: str
    metric: str = "error_rate"
    reference: dict[str, float] = field(default_factory=dict)  # the reference model's error per split
    reference_name: str = REFERENCE

    @property
    def point(self) -> float:
        return (self.lower + self.upper) / 2

    @property
    def range(self) -> tuple[float, float]:
        return self.lower, self.upper

    def document(self) -> dict:
        return {"source": "estimated", "lower": self.lower, "upper": self.upper, "method": self.method,
                "metric": self.metric, "reference_model": self.reference_name, "reference": dict(self.reference)}


def regression_error(residuals: np.ndarray, metric: str) -> float:
    """RMSE, or MAE when `metric` is "mae", of the residuals."""
    if metric == "mae":
        return float(np.mean(np.abs(residuals)))
    return float(np.sqrt(np.mean(residuals ** 2)))


def classification_ends(confidence: np.ndarray, wrong: np.ndarray, z: float = Z95) -> tuple[float, float]:
    """(plug-in lower end, Wilson upper end) from each held-out row's top predicted probability and whether
    the prediction was wrong: the mean of 1 - confidence lowered by its noise, the error rate raised by it."""
    n = len(wrong)
    plug = 1.0 - np.asarray(confidence, dtype=np.float64)
    lower = max(0.0, float(plug.mean() - z * plug.std(ddof=1) / math.sqrt(n)))
    return lower, wilson(float(np.mean(wrong)), n, z=z)[1]


def regression_upper(abs_residuals: np.ndarray, metric: str, z: float = Z95) -> float:
    """The upper end of a normal interval on the mean absolute or squared held-out residual, in y's unit."""
    abs_residuals = np.asarray(abs_residuals, dtype=np.float64)
    loss = abs_residuals if metric == "mae" else abs_residuals ** 2
    upper = float(loss.mean() + z * loss.std(ddof=1) / math.sqrt(len(loss)))
    return upper if metric == "mae" else math.sqrt(upper)


def network_bracket(task: str, metric: str = "error_rate", *, confidence=None, wrong=None, train_dev_abs=None,
                    train_error: float | None = None, z: float = Z95) -> tuple[float, float, float]:
    """(lower, upper, train-dev error) from a model's own figures: classification, each train-dev row's top
    predicted probability (`confidence`) and whether it was `wrong`; regression, each train-dev row's
    absolute error (`train_dev_abs`) and the model's error on its training split (`train_error`)."""
    if task == "classification":
        lower, upper = classification_ends(confidence, wrong, z)
        return min(lower, upper), upper, float(np.mean(wrong))
    upper = regression_upper(train_dev_abs, metric, z)
    return min(float(train_error), upper), upper, regression_error(np.asarray(train_dev_abs, np.float64), metric)


def combine(task: str, reference: tuple[float, float, float] | None,
            network: tuple[float, float, float]) -> tuple[float, float]:
    """The bracket of two models fitted on the training split, each given as (lower, upper, train-dev error).

    Upper: the lower upper end. Lower: the lower of the two lower ends; for classification lowered again by
    the gap between their train-dev errors (a model that beats another by that much may be as far from the
    best). `reference` None: the network's bracket alone.
    """
    if reference is None:
        return max(0.0, network[0]), network[1]
    upper = min(reference[1], network[1])
    lower = min(reference[0], network[0])
    if task == "classification":
        lower -= abs(reference[2] - network[2])
    return max(0.0, min(lower, upper)), upper


def refine(document: dict, splits, result) -> tuple[float, tuple[float, float], dict]:
    """After training: the estimated baseline (`document`, from `training.baseline.baseline`) combined with the network's own
    figures on train-dev (`result`: dlexp's FitResult, its eval pass over the splits: predicted class and top
    probability per row for classification, absolute errors for regression). Returns (human level, its
    range, the new document), which names both models' brackets and the method that combined them."""
    task, metric = splits.task, splits.metric
    network = None  # stays None where the network gave no usable figures (a diverged one: not finite)
    if task == "classification":
        pred, confidence = (result.predictions or {}).get("train_dev", (None, None))
        if pred is not None and len(pred) >= MIN_TRAIN_DEV and np.all(np.isfinite(confidence)):
            evals = getattr(result, "evals", None) or {}
            labels = evals["train_dev"].labels if "train_dev" in evals else splits.train_dev.y
            network = network_bracket(task, confidence=confidence, wrong=pred != np.asarray(labels))
    else:
        abs_td = (result.abs_errors or {}).get("train_dev")
        if abs_td is not None and len(abs_td) >= MIN_TRAIN_DEV and np.all(np.isfinite(abs_td)):
            network = network_bracket(task, metric, train_dev_abs=abs_td, train_error=result.errors["train"])
    if network is not None and not all(math.isfinite(v) for v in network):
        network = None
    reference = None
    if document.get("lower") is not None:
        reference = (document["lower"], document["upper"], document["reference"]["train_dev"])
    if network is None:
        if reference is None:  # nothing to estimate from: judged as with baseline.human_error=none
            return 0.0, None, {"source": "none", "why": "the network gave no finite train-dev figures to "
                                                        "estimate the Bayes error from"}
        return (reference[0] + reference[1]) / 2, reference[:2], document
    lower, upper = combine(task, reference, network)
    unit = metric.upper()
    if reference is None:
        method = NETWORK_ONLY[task].format(why=document.get("why", ""), metric=unit)
    else:
        method = COMBINED[task].format(metric=unit)
    brackets = {**({document.get("reference_model", REFERENCE): list(reference[:2])} if reference else {}),
                NETWORK: list(network[:2])}
    refined = {k: v for k, v in document.items() if k != "why"}
    refined.update(lower=lower, upper=upper, method=method, brackets=brackets)
    return (lower + upper) / 2, (lower, upper), refined


def _suggest(splits) -> str:
    if splits.task == "classification":
        return "baseline.human_error=0.05"
    return f"baseline.human_error={0.05 * splits.spread:.3g} (in the target's unit)"


def check(splits) -> None:
    """Raise one DataError line when the splits cannot carry the estimate, suggesting a number to give instead."""
    n_train, n_td = len(splits.train), len(splits.train_dev)
    way_out = f"give your own estimate, e.g. {_suggest(splits)}, or baseline.human_error=none to judge without one"
    if n_train < MIN_TRAIN or n_td < MIN_TRAIN_DEV:
        raise DataError(f"baseline.human_error=auto estimates the Bayes error from the training and train-dev "
                        f"splits, which have {n_train} and {n_td} rows (it needs at least {MIN_TRAIN} and "
                        f"{MIN_TRAIN_DEV}); {way_out}")
    y = np.asarray(splits.train.y)
    if splits.task == "classification":
        classes = np.unique(y)
        if len(classes) < 2:
            raise DataError(f"the training split holds a single class ({classes[0]!r}): there is no Bayes error "
                            "to estimate with baseline.human_error=auto; set baseline.human_error=0, or give "
                            "the training split more classes")
    elif float(np.ptp(y.astype(np.float64))) == 0.0:
        raise DataError(f"the target is constant ({float(y[0]):g}) in the training split: there is no Bayes error "
                        "to estimate with baseline.human_error=auto; set baseline.human_error=0, or pick "
                        "another data.target")


def check_own(splits) -> None:
    """Raise one DataError line when the user's own Datasets have too few train-dev items for the network's
    bracket (the only estimate made on them: they are read batch by batch, never held as arrays)."""
    n_td = splits.sizes()["train_dev"]
    if n_td < MIN_TRAIN_DEV:
        raise DataError(f"baseline.human_error=auto estimates the Bayes error from the network's train-dev "
                        f"figures, and train-dev has {n_td} items (it needs {MIN_TRAIN_DEV}); "
                        f"give your own estimate, e.g. {_suggest(splits)}, or baseline.human_error=none")
