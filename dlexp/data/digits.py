"""scikit-learn's bundled 8x8 digits, split four ways (stratified, fixed by the seed). No download."""

from __future__ import annotations

import numpy as np

from dlexp.data import Split, Splits


def build(cfg, *, seed: int) -> Splits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)  # pixel intensities 0..16 -> 0..1
    y = y.astype(np.int64)
    index = np.arange(len(y))  # each example's dataset index: the row that data.exclude_rows names
    held = cfg.dev_fraction + cfg.test_fraction
    x_src, x_tgt, y_src, y_tgt, i_src, i_tgt = train_test_split(x, y, index, test_size=held, stratify=y,
                                                                random_state=seed)
    x_dev, x_test, y_dev, y_test, i_dev, i_test = train_test_split(
        x_tgt, y_tgt, i_tgt, test_size=cfg.test_fraction / held, stratify=y_tgt, random_state=seed)
    x_tr, x_td, y_tr, y_td, i_tr, i_td = train_test_split(
        x_src, y_src, i_src, test_size=cfg.train_dev_fraction / (1 - held), stratify=y_src, random_state=seed)
    if cfg.n_train is not None:
        x_tr, y_tr, i_tr = x_tr[: cfg.n_train], y_tr[: cfg.n_train], i_tr[: cfg.n_train]
    return Splits(Split(x_tr, y_tr, i_tr), Split(x_td, y_td, i_td), Split(x_dev, y_dev, i_dev),
                  Split(x_test, y_test, i_test), n_classes=10, bayes_error=None)
