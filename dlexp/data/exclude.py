"""`data.exclude_rows`: leave training rows out, by their row numbers (`Split.rows`).

The value is a file: a run's `label_issues.csv` (its rows with split=train) or plain text, one row number a
line. A run id is turned into that run's CSV by the caller (`dlexp.tracking.flagged`) before the data loads.
Only the training split loses rows, so train-dev, dev and test stay the same examples as the run compared.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from dlexp.errors import ConfigError


def read(path: str) -> set[int]:
    """The row numbers in `path`; ConfigError (one line) when it cannot be read."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"data.exclude_rows={path}: no such file and no such run; give a run id from "
                          "`dlexp runs` or a file of row numbers (one a line)")
    text = p.read_text().splitlines()
    try:
        if text and text[0].startswith("split,"):
            return {int(r["row"]) for r in csv.DictReader(text) if r["split"] == "train"}
        return {int(line.strip()) for line in text if line.strip() and not line.startswith("#")}
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"data.exclude_rows={path}: not a list of row numbers ({exc}); give one row number a "
                          "line, or a run's label_issues.csv") from None


def apply(splits, path: str):
    """`splits` without the training rows listed in `path`, with a data check saying how many were left out."""
    listed = read(path)
    train = splits.train
    numbers = train.rows if train.rows is not None else np.arange(len(train))
    drop = np.isin(numbers, np.fromiter(listed, dtype=np.int64, count=len(listed)))
    if drop.all():
        raise ConfigError(f"data.exclude_rows={path} leaves no training rows")
    keep = ~drop
    kept = dataclasses.replace(train, x=train.x[keep], y=train.y[keep],
                               rows=None if train.rows is None else train.rows[keep])
    note = f"left out {int(drop.sum())} training rows listed by data.exclude_rows"
    if len(listed) > drop.sum():
        note += f" ({len(listed) - int(drop.sum())} listed rows are not training rows)"
    return dataclasses.replace(splits, train=kept, checks=tuple(splits.checks) + (note,))
