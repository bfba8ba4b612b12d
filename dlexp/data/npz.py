"""Arrays saved with numpy.savez: X (N x C x H x W, or N x H x W: one channel) and y (N class labels).

Split four ways (stratified, fixed by the seed); inputs standardized per channel with training statistics.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dlexp.data import Split, Splits
from dlexp.errors import DataError


def _load(cfg):
    p = Path(str(cfg.path)).expanduser()
    if not p.is_file():
        raise DataError(f"data.path: no such file: {cfg.path}")
    if p.stat().st_size == 0:
        raise DataError(f"data.path: {cfg.path} is empty")
    try:
        with np.load(p, allow_pickle=False) as arrays:
            names = list(arrays.files)
            missing = [k for k in (cfg.x_key, cfg.y_key) if k not in names]
            if missing:
                raise DataError(f"{cfg.path} has no array {', '.join(map(repr, missing))}; it holds: "
                                f"{', '.join(names) or 'nothing'} (set data.x_key / data.y_key)")
            return arrays[cfg.x_key], arrays[cfg.y_key]
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"data.path: cannot read {cfg.path} as .npz: {str(exc).splitlines()[0][:200]}") from None


def build(cfg, *, seed: int) -> Splits:
    from sklearn.model_selection import train_test_split

    x, y = _load(cfg)
    if x.ndim == 3:
        x = x[:, None]  # N x H x W -> one channel
    if x.ndim != 4:
        raise DataError(f"{cfg.x_key} in {cfg.path} has shape {x.shape}; expected N x C x H x W (or N x H x W)")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{cfg.y_key} in {cfg.path} has shape {y.shape}; expected ({len(x)},) labels, one per image")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{cfg.x_key} in {cfg.path} holds {x.dtype} values; numbers expected")
    classes, y = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{cfg.y_key} in {cfg.path} has a single class ({classes[0]!r}): nothing to classify")
    n = len(y)
    held = cfg.dev_fraction + cfg.test_fraction
    if min(round(n * cfg.test_fraction), round(n * cfg.dev_fraction), round(n * (1 - held) * cfg.train_dev_fraction)) < 1:
        raise DataError(f"{cfg.path} has {n} examples, fewer than the four splits need; use more examples")
    strat = y if np.bincount(y).min() >= 4 else None
    idx = np.arange(n)
    src, tgt = train_test_split(idx, test_size=held, stratify=strat, random_state=seed)
    dev, test = train_test_split(tgt, test_size=cfg.test_fraction / held,
                                 stratify=None if strat is None else y[tgt], random_state=seed)
    train, td = train_test_split(src, test_size=cfg.train_dev_fraction / (1 - held),
                                 stratify=None if strat is None else y[src], random_state=seed)
    if cfg.n_train is not None:
        train = train[: cfg.n_train]
    x = x.astype(np.float32)
    mean = x[train].mean(axis=(0, 2, 3), keepdims=True)
    std = x[train].std(axis=(0, 2, 3), keepdims=True)
    std[std == 0] = 1.0
    x = (x - mean) / std
    y = y.astype(np.int64)
    parts = {k: Split(np.ascontiguousarray(x[i]), y[i]) for k, i in
             {"train": train, "train_dev": td, "dev": dev, "test": test}.items()}
    return Splits(**parts, n_classes=len(classes), bayes_error=None, needs_human="data=npz",
                  description={"source": str(cfg.path), "classes": [str(c) for c in classes],
                               "channel_mean": mean.ravel().tolist(), "channel_std": std.ravel().tolist()})
