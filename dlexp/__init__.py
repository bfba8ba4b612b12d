"""dlexp: train a model, measure its error on four splits, and say what to fix next.

In a notebook, `dlexp.diagnose` judges four errors you already have (importing dlexp loads neither torch,
Lightning nor MLflow):

>>> import dlexp
>>> d = dlexp.diagnose(train=0.08, train_dev=0.09, dev=0.10, test=0.11, human=0.01,
...                    sizes={"train": 8000, "train_dev": 2000, "dev": 2000, "test": 2000})
>>> d.verdict, d.problems
('avoidable_bias', ('avoidable_bias',))
>>> gap = d.gap("avoidable_bias")
>>> round(gap.value, 4), [round(x, 4) for x in gap.interval], gap.problem
(0.07, [0.0643, 0.0761], True)
>>> d.gap("variance").problem  # 1 point, but its interval [-0.0033, 0.0245] does not clear the tolerance
False
>>> d.actions[0].problem, d.actions[0].command  # no run to build on: the steps carry no command
('avoidable_bias', None)
"""

from __future__ import annotations

import functools

__version__ = "0.1.0"


def diagnose(*, train: float, dev: float, test: float, train_dev: float | None = None,
             human: float | tuple[float, float] | None = None, sizes: dict | None = None,
             tolerance: float = 0.01):
    """Diagnose four error rates against a human-level error: a `dlexp.diagnosis.Report`.

    - `human`: the human-level error (a stand-in for Bayes error), or a range ``(lo, hi)`` from several
      annotators; None when there is no baseline (avoidable bias is then unknown).
    - `train_dev`: the error on data held out from training; None when it was not measured: the train-to-dev gap
      is then one gap, ``variance_or_mismatch``.
    - `sizes`: examples per split (``{"train": 8000, "dev": 2000, ...}``); each error and gap then gets a 95%
      interval, and a gap counts only when its interval clears `tolerance`. Without sizes, the estimates
      are held against `tolerance` and there are no intervals.

    The report has `verdict`, `problems` (largest first), `gaps` (name -> value, problem, interval),
    `gap(name)`, `actions` (each with problem, action, why), `document()` (the JSON of `dlexp diagnose --json`),
    and shows itself as a table in Jupyter. Bad figures raise ValueError.

    Examples:
        >>> d = diagnose(train=0.02, dev=0.09, test=0.09, human=0.01)
        >>> d.verdict, [a.action for a in d.actions][:1]
        ('variance_or_mismatch', ['Measure a train-dev split: hold out part of the training data and measure its error'])
        >>> diagnose(train=1.2, dev=0.1, test=0.1, human=0.01)
        Traceback (most recent call last):
        ValueError: train error must be a number in [0, 1], got 1.2
    """
    from dataclasses import fields

    from dlexp.diagnosis import SPLITS, SplitErrors, check_error, what_if

    figures = {"train": train, "train_dev": train_dev, "dev": dev, "test": test}
    for name, value in figures.items():
        if value is not None or name != "train_dev":
            check_error(name, value)
    human_range = None
    if isinstance(human, (tuple, list)):
        if len(human) != 2:
            raise ValueError(f"human takes an error rate or a range (lo, hi), got {human!r}")
        for v in human:
            check_error("human", v)
        human_range = (min(human), max(human))
        human = sum(human_range) / 2
    elif human is not None:
        check_error("human", human)
    unknown = sorted(set(sizes or {}) - set(SPLITS))
    if unknown:
        raise ValueError(f"sizes takes the splits {', '.join(SPLITS)}; not {', '.join(unknown)}")
    for name, n in (sizes or {}).items():
        if n is not None and (not isinstance(n, int) or n <= 0):
            raise ValueError(f"sizes[{name!r}] must be a positive number of examples, got {n!r}")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be a number >= 0, got {tolerance!r}")
    errors = SplitErrors(human=0.0 if human is None else human, **figures)
    report = what_if(errors, sizes=sizes, tolerance=tolerance, human_range=human_range, human_known=human is not None)
    return _notebook_report()(**{f.name: getattr(report, f.name) for f in fields(report)})


@functools.cache
def _notebook_report():
    """`Report` as Jupyter shows it: the verdict, the table with intervals, the notes and the next steps (the
    pure core's Report knows nothing of rendering; this is the Python API's)."""
    from dlexp.diagnosis import Report

    class NotebookReport(Report):
        def _repr_markdown_(self) -> str:
            from dlexp.render.markdown import diagnosis as markdown  # standard library only

            return markdown(self.document())

    return NotebookReport
