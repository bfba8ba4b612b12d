"""A classification task with a known Bayes error, a non-linear boundary, and a shift that can be dialled in.

Inputs are standard normal in `n_features` dimensions; the label depends only on a 2-D projection z = x P:
the angular sector of z plus the index of its unit-width ring, modulo `n_classes`. Sectors and rings
interleave, so no linear model comes close, while a small MLP can learn it. Each label is then replaced by
a different class with probability `label_noise`, which makes the Bayes error exactly `label_noise`.

`shift` moves the dev/test inputs by that many standard deviations along a direction inside the labelled
plane, into outer rings that the training distribution rarely reaches: a covariate shift that hurts a
model through data mismatch while the Bayes error stays the same. `target_fraction` mixes that many
target-distribution examples into the training distribution (train and train-dev alike).
"""

from __future__ import annotations

import numpy as np

from dlexp.data import Split, Splits


def _task(n_features: int, task_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The labelling plane P (n_features x 2, orthonormal) and the shift direction (unit, in the plane)."""
    rng = np.random.default_rng(task_seed)
    plane, _ = np.linalg.qr(rng.normal(size=(n_features, 2)))
    return plane, plane[:, 0]


def label(x: np.ndarray, plane: np.ndarray, n_classes: int) -> np.ndarray:
    z = x @ plane  # (n, 2)
    angle = np.arctan2(z[:, 1], z[:, 0])
    sector = np.floor((angle + np.pi) / (2 * np.pi) * n_classes).astype(np.int64) % n_classes
    ring = np.floor(np.hypot(z[:, 0], z[:, 1])).astype(np.int64)
    return (sector + ring) % n_classes


def _draw(rng, n: int, cfg, plane, direction, target_share: float) -> Split:
    x = rng.normal(size=(n, cfg.n_features))
    from_target = rng.random(n) < target_share
    x[from_target] += cfg.shift * direction
    y = label(x, plane, cfg.n_classes)
    noisy = rng.random(n) < cfg.label_noise
    # a different class, uniformly: the true label stays the most likely one, so Bayes error = label_noise
    y[noisy] = (y[noisy] + rng.integers(1, cfg.n_classes, size=int(noisy.sum()))) % cfg.n_classes
    return Split(x.astype(np.float32), y)


def build(cfg, *, seed: int) -> Splits:
    plane, direction = _task(cfg.n_features, cfg.task_seed)
    rng = np.random.default_rng(seed)
    mix = cfg.target_fraction if cfg.shift else 0.0
    return Splits(
        train=_draw(rng, cfg.n_train, cfg, plane, direction, mix),
        train_dev=_draw(rng, cfg.n_train_dev, cfg, plane, direction, mix),
        dev=_draw(rng, cfg.n_dev, cfg, plane, direction, 1.0),
        test=_draw(rng, cfg.n_test, cfg, plane, direction, 1.0),
        n_classes=cfg.n_classes,
        bayes_error=float(cfg.label_noise),
    )
