"""Two stored runs compared: each run's diagnosis and per-example outcomes read back, then `compare()`.

What `dlexp compare A B` (and `dlexp compare B`, against the run B follows) prints. No torch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from dlexp.diagnosis.compare import Comparison, Outcomes, compare
from dlexp.errors import DlexpError, StoreError
from dlexp.tracking import outcomes as run_outcomes
from dlexp.tracking import runs as tracking_runs
from dlexp.tracking.rediagnose import rediagnose

FOLLOWS = "dlexp.follows"  # tag: the run this run follows (set by `dlexp next` and the recipe)


class NotComparable(DlexpError):
    """Two runs whose errors are not in the same unit."""


def followed_run(uri: str | None, run_id: str) -> str:
    """The run that `run_id` follows (its dlexp.follows tag); a one-line error when it follows none."""
    from dlexp.tracking.client import client

    c = client(uri)
    run = tracking_runs.resolve_run(c, run_id)
    followed = run.data.tags.get(FOLLOWS)
    if not followed:
        raise DlexpError(f"run {run.info.run_id} follows no run; give two run ids: dlexp compare A "
                         f"{run.info.run_id} (`dlexp runs` lists them)")
    return followed


def load_outcomes(uri: str | None, run_id: str) -> Outcomes | None:
    """The run's per-example outcomes, or None for a run that kept none (logged before dlexp kept them).

    A damaged outcomes file is refused in one line rather than read as "no outcomes".
    """
    with tempfile.TemporaryDirectory() as tmp:
        files = tracking_runs.run_files(uri, run_id, run_outcomes.FOLDER, Path(tmp))
        path = next((p for p in files if p.name == run_outcomes.FILE), None)
        if path is None:
            return None
        try:
            return run_outcomes.read(path)
        except (ValueError, OSError, KeyError) as exc:
            raise StoreError(f"run {run_id}: {run_outcomes.FOLDER}/{run_outcomes.FILE} cannot be read ({exc}); "
                             f"delete that artifact to compare the run by its errors and sizes alone") from None


def compare_runs(uri: str | None, a: str, b: str) -> Comparison:
    """Run B against run A: paired on every split where both kept outcomes on the same examples.

    Raises StoreError for an unknown run or one without a diagnosis, NotComparable for runs whose errors
    are not in the same unit (different tasks or metrics).
    """
    report_a, _ = rediagnose(uri, a)
    report_b, _ = rediagnose(uri, b)
    da, db = report_a.document(), report_b.document()
    if (da["task"], da["metric"]) != (db["task"], db["metric"]):
        raise NotComparable(f"runs {da['run_id']} and {db['run_id']} cannot be compared: A measures "
                            f"{da['task']} ({da['metric']}), B {db['task']} ({db['metric']}); compare runs "
                            "of the same task and metric")
    oa, ob = load_outcomes(uri, da["run_id"]), load_outcomes(uri, db["run_id"])
    try:
        return compare(da, db, outcomes_a=oa, outcomes_b=ob)
    except ValueError as exc:
        raise NotComparable(f"runs {da['run_id']} and {db['run_id']} cannot be compared: {exc}") from None
