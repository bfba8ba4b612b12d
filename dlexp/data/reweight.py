"""`data.reweight`: draw training examples in proportion to how much they look like dev/test (a data mismatch move).

A logistic regression (scikit-learn) learns to tell the training inputs from the dev inputs (their features
only: dev's labels and every test example stay out of it). Its cross-fitted odds, p(dev | x) / p(train | x),
estimate how much more often an input like x occurs where the model will serve than in training: the density
ratio of a covariate shift. Each epoch then draws the training rows with replacement in proportion to
ratio ** strength (`data.reweight`, 0 to 1: 1 is the full ratio, 0.5 its square root, flatter and so less
noisy). The errors are still measured on the splits as they are: train and train-dev from the training
distribution, dev and test from theirs, so every gap keeps its meaning.

Logged with the run: `data/shift_auc`, how well the classifier tells the two apart (0.5: no shift it can see),
and `data/reweight_ess`, the effective share of the training set that the weights leave (1: all of it).
"""

from __future__ import annotations

import dataclasses

import numpy as np

FOLDS = 5
MAX_WEIGHT = 20.0  # x the mean weight: one input this unlike training cannot take over the epoch


def ratios(train_x: np.ndarray, target_x: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, float]:
    """(p(target | x) / p(train | x) for each training row, scaled by the class sizes; the classifier's AUC),
    each row's odds predicted by a model fitted on the folds that do not hold it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([train_x, target_x]).astype(np.float64)
    side = np.r_[np.zeros(len(train_x)), np.ones(len(target_x))]
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    p = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), x, side,
                          cv=folds, method="predict_proba")[:, 1]
    p = np.clip(p, 1e-6, 1 - 1e-6)
    odds = p[:len(train_x)] / (1 - p[:len(train_x)]) * len(train_x) / len(target_x)
    return odds, float(roc_auc_score(side, p))


def weights(odds: np.ndarray, strength: float) -> np.ndarray:
    """Sampling weights, mean 1: odds ** strength, capped at MAX_WEIGHT x their mean.

    >>> weights(np.array([1.0, 4.0, 0.25]), 0.5).round(3).tolist()
    [0.857, 1.714, 0.429]
    >>> weights(np.array([1.0, 4.0, 0.25]), 0.0).tolist()
    [1.0, 1.0, 1.0]
    """
    w = odds ** strength
    n, top = len(w), np.sort(w)[::-1]
    rest = np.cumsum(top[::-1])[::-1]  # rest[k]: the sum of all but the k largest
    for k in range(n):  # cap the k largest at MAX_WEIGHT and scale the others so that the mean is 1
        scale = (n - k * MAX_WEIGHT) / rest[k]
        if scale * top[k] <= MAX_WEIGHT:
            return np.minimum(w * scale, MAX_WEIGHT)
    return np.ones_like(w)


def effective_share(w: np.ndarray) -> float:
    """Kish's effective sample size over n: (sum w)^2 / (n sum w^2); 1 when all weights are equal."""
    return float(w.sum() ** 2 / (len(w) * (w ** 2).sum()))


def apply(splits, strength: float, *, seed: int):
    """`splits` whose training rows carry sampling weights (`Splits.train_weights`) and the two figures above.
    Only the sources of rows of features (synthetic, table, sql) have the key."""
    odds, auc = ratios(splits.train.x, splits.dev.x, seed=seed)
    w = weights(odds, float(strength))
    stats = dict(splits.stats, shift_auc=auc, reweight_ess=effective_share(w))
    checks = tuple(splits.checks)
    if auc < 0.55:
        checks += (f"data.reweight: a classifier tells training inputs from dev inputs no better than chance "
                   f"(AUC {auc:.2f}), so the weights change little; the gap is not a shift in the inputs it sees",)
    return dataclasses.replace(splits, train_weights=w.astype(np.float32), stats=stats, checks=checks)
