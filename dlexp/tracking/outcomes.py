"""A run's per-example outcomes on every split, kept as one small artifact so that any two runs can be
compared later, paired, without retraining (`dlexp compare`).

One compressed `.npz` file (`outcomes/outcomes.npz` in the run's artifacts), numpy only:

- classification: which examples the model got wrong, one bit each (`np.packbits`): 60,000 examples take
  7.5 KB;
- regression: each example's absolute error in the target's unit, as float16 after dividing by the split's
  largest error (so nothing overflows, and each error keeps 11 significant bits: the RMSE or MAE computed back
  from them is within 0.05% of the run's own);
- for each split a fingerprint of its examples: the SHA-256 of its rows and labels, in order. Two runs are
  compared example by example on a split only when the fingerprints match.

The file is read with `allow_pickle=False`: a downloaded artifact cannot run code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from dlexp.diagnosis.compare import Outcomes

SPLITS = ("train", "train_dev", "dev", "test")
FOLDER = "outcomes"        # the artifact folder
FILE = "outcomes.npz"      # the file in it
VERSION = 1


def fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of a split's rows and labels, their shapes and dtypes, in order.

    >>> x, y = np.zeros((3, 2), np.float32), np.array([0, 1, 1])
    >>> fingerprint(x, y) == fingerprint(x.copy(), y.copy()), fingerprint(x, y) == fingerprint(x, y[::-1])
    (True, False)
    """
    h = hashlib.sha256()
    for a in (x, y):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def from_fit(splits, result) -> Outcomes | None:
    """The outcomes of a finished fit: `splits` (its task and metric) and the fit's result, whose `evals` (one
    `SplitEval` per split: predictions or absolute errors, labels, fingerprint, all from the eval pass) they
    are read from; None when the fit kept none (a language model, a rank other than the first)."""
    evals = getattr(result, "evals", None) or {}
    if splits.task == "classification":
        values = {s: np.asarray(evals[s].predicted) != np.asarray(evals[s].labels)
                  for s in SPLITS if s in evals and evals[s].predicted is not None}
    else:
        values = {s: np.asarray(evals[s].abs_errors) for s in SPLITS if s in evals and evals[s].abs_errors is not None}
    if not values:
        return None
    return Outcomes(splits.task, splits.metric, values, {s: evals[s].fingerprint for s in values})


def write(outcomes: Outcomes, folder: Path) -> Path:
    """Write `outcomes` as `folder/outcomes.npz`; return the file's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays, meta = {}, {"version": VERSION, "task": outcomes.task, "metric": outcomes.metric,
                        "fingerprints": dict(outcomes.fingerprints), "n": {}, "scale": {}}
    for split, v in outcomes.values.items():
        v = np.asarray(v)
        meta["n"][split] = int(len(v))
        if outcomes.task == "classification":
            arrays[split] = np.packbits(v.astype(bool))
        else:
            v = np.abs(v.astype(np.float64))
            scale = float(v.max()) if len(v) and np.isfinite(v).all() and v.max() > 0 else 1.0
            meta["scale"][split] = scale
            arrays[split] = (v / scale).astype(np.float16)
    path = folder / FILE
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def read(path: Path) -> Outcomes:
    """Read a file written by `write`. Raises ValueError when it is not one."""
    with np.load(path, allow_pickle=False) as f:
        try:
            meta = json.loads(str(f["meta"]))
        except KeyError:
            raise ValueError(f"{path} holds no dlexp outcomes") from None
        if meta.get("version") != VERSION:
            raise ValueError(f"{path}: outcomes version {meta.get('version')} is not {VERSION}")
        values = {}
        for split, n in meta["n"].items():
            if meta["task"] == "classification":
                values[split] = np.unpackbits(f[split], count=n).astype(bool)
            else:
                values[split] = f[split].astype(np.float64) * meta["scale"][split]
    return Outcomes(meta["task"], meta["metric"], values, meta["fingerprints"])
