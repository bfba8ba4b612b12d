"""Wrong labels, read in the diagnosis: the share of each split's labels that look wrong, the lines that say
it, and the label steps (train without the flagged rows; review the dev labels). Pure: plain mappings in.

The figures come from `dlexp.training.labels` (confident learning on out-of-sample probabilities); a split's
entry is {"count": flagged rows, "rate": count / n, "interval": 95% Wilson interval, "n", "method", ...}.
For regression the entries hold `"kind": "outliers"` and `"threshold"` (targets whose out-of-sample residual is
beyond that many robust standard deviations): they are said as outliers and take no step.

>>> doc = {"train": {"count": 98, "rate": 0.098, "interval": [0.081, 0.118], "n": 1000},
...        "dev": {"count": 5, "rate": 0.017, "interval": [0.007, 0.038], "n": 300, "mistakes": 12,
...                "flagged_mistakes": 5}}
>>> for line in lines(doc, human=0.02): print(line)
about 9.8% [8.1, 11.8] of training labels look wrong; about 1.7% [0.7, 3.8] of dev labels
5 of 12 dev mistakes are examples the model got right and the label did not
the training labels' noise (9.8%) is above the human level (2.0%): the training error cannot go below the noise, and wrong labels teach the model wrong answers
>>> [a.action.split(":")[0] for a in steps(doc, tolerance=0.01, run_id="abc", overrides=["data=digits"],
...                                         source="digits")]
['Train without the 98 flagged training rows']
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from dlexp.diagnosis.actions import Action, merge_overrides

CSV = "label_issues.csv"  # in the run's analysis/ folder
EXCLUDABLE = ("table", "digits", "synthetic", "text", "images")  # sources that know data.exclude_rows
_NAMES = {"train": "training", "train_dev": "train-dev", "dev": "dev", "test": "test"}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def clears(entry: Mapping | None, tolerance: float) -> bool:
    """The split's noise rate is a problem: its interval's lower end reaches the tolerance."""
    return bool(entry) and entry.get("interval") is not None and entry["interval"][0] >= tolerance


def outliers(doc: Mapping | None) -> bool:
    """The entries are regression outliers, not wrong classes."""
    return bool(doc) and any(isinstance(e, Mapping) and e.get("kind") == "outliers" for e in doc.values())


def _rates(doc: Mapping, what: str) -> list[str]:
    return [f"about {_pct(e['rate'])}% [{_pct(e['interval'][0])}, {_pct(e['interval'][1])}] of {_NAMES[s]} {what}"
            for s, e in doc.items() if s in _NAMES and e.get("interval")]


def _method(doc: Mapping) -> str | None:
    """Which model's out-of-sample predictions the search read, per split (when the entries say)."""
    by: dict[str, list[str]] = {}
    for s, e in doc.items():
        if s in _NAMES and e.get("method"):
            by.setdefault(e["method"], []).append(_NAMES[s])
    return ("found from " + "; ".join(f"{m} ({', '.join(names)})" for m, names in by.items())) if by else None


def outlier_lines(doc: Mapping) -> list[str]:
    """Regression: the share of targets whose out-of-sample residual is extreme, and where to see them.

    >>> doc = {"train": {"count": 31, "rate": 0.031, "interval": [0.022, 0.044], "n": 1000, "kind": "outliers",
    ...                  "threshold": 3.5, "method": "5-fold ridge regression on the inputs"}}
    >>> for line in lines(doc): print(line)
    about 3.1% [2.2, 4.4] of training targets are outliers: residual beyond 3.5 robust SDs (1.4826 x MAD) of the median
    review them worst first in analysis/label_issues.csv; data.exclude_rows=RUN_ID trains without the training ones
    found from 5-fold ridge regression on the inputs (training)
    >>> steps(doc, tolerance=0.0, run_id="abc", source="table")
    ()
    """
    parts = _rates(doc, "targets")
    k = next(e.get("threshold") for e in doc.values() if isinstance(e, Mapping) and e.get("kind") == "outliers")
    out = [f"{parts[0]} are outliers: residual beyond {k:g} robust SDs (1.4826 x MAD) of the median"
           + ("; " + "; ".join(parts[1:]) if parts[1:] else "") if parts else None]
    if any(e.get("count") for e in doc.values() if isinstance(e, Mapping)):
        out.append(f"review them worst first in analysis/{CSV}; data.exclude_rows=RUN_ID trains without the "
                   "training ones")
    out.append(_method(doc))
    return [line for line in out if line]


def lines(doc: Mapping, *, human: float | None = None, tolerance: float = 0.0) -> list[str]:
    """What the terminal prints after the error table; the noise is set against the human level only when
    its rate clears the tolerance."""
    if outliers(doc):
        return outlier_lines(doc)
    parts = _rates(doc, "labels")
    out = [("; ".join(parts[:1]) + " look wrong" + ("; " + "; ".join(parts[1:]) if parts[1:] else ""))
           if parts else None]
    dev = doc.get("dev") or {}
    if dev.get("mistakes"):
        out.append(f"{dev['flagged_mistakes']} of {dev['mistakes']} dev mistakes are examples the model got right "
                   "and the label did not")
    train = doc.get("train") or {}
    if human is not None and clears(train, tolerance) and train["interval"][0] > human:
        out.append(f"the training labels' noise ({_pct(train['rate'])}%) is above the human level "
                   f"({_pct(human)}%): the training error cannot go below the noise, and wrong labels teach the "
                   "model wrong answers")
    out.append(_method(doc))
    return [line for line in out if line]


def steps(doc: Mapping | None, *, tolerance: float, run_id: str | None, overrides: Sequence[str] = (),
          source: str | None = None, human: float | None = None) -> tuple[Action, ...]:
    """The label steps, to go first among the next steps: train without the flagged training rows (an exact
    command repeating the run's overrides), and review the dev labels when dev's rate clears the tolerance.

    Wrong-looking labels up to the human level are what the human level already counts (the irreducible
    error: examples even a person labels either way, as in data=synthetic's known Bayes error), so the
    training step comes only when the rate's lower end clears the tolerance above the human level.

    Regression outliers take no step: an extreme residual is as often a real rare case as a wrong target, and
    the training error without them measures another problem; the lines point to the CSV and data.exclude_rows.

    >>> doc = {"train": {"count": 125, "rate": 0.0125, "interval": [0.0105, 0.0149]}}
    >>> steps(doc, tolerance=0.01, run_id=None, human=0.05), len(steps(doc, tolerance=0.01, run_id=None))
    ((), 1)
    """
    out: list[Action] = []
    if not doc or outliers(doc):
        return ()
    train, dev = doc.get("train"), doc.get("dev")
    if clears(train, tolerance + (human or 0.0)) and train.get("count"):
        command = None
        if run_id and source in EXCLUDABLE:
            args = merge_overrides(overrides, [f"data.exclude_rows={run_id}"])
            command = " ".join(["dlexp", "train"] + [shlex.quote(a) for a in args])
        out.append(Action("labels", f"Train without the {train['count']} flagged training rows: "
                          "data.exclude_rows=RUN_ID leaves out the rows that run flagged",
                          f"about {_pct(train['rate'])}% of training labels look wrong; a model fitting them "
                          "learns wrong answers (`dlexp compare` then holds the two runs side by side)", command))
    if clears(dev, tolerance) and dev.get("count"):
        out.append(Action("labels", f"Review the dev labels: the {dev['count']} rows with split=dev in "
                          f"analysis/{CSV}, worst first",
                          f"about {_pct(dev['rate'])}% of dev labels look wrong, so dev's error misjudges the model",
                          None))
    return tuple(out)
