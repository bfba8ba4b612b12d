"""`data.exclude_rows=RUN_ID`: fetch the rows that run flagged (its analysis/label_issues.csv) from the store."""

from __future__ import annotations

from pathlib import Path

from dlexp.errors import ConfigError, StoreError


def resolve(uri: str | None, value: str, dest: Path, *, depth: int = 0) -> str:
    """`value` as a file of rows: an existing file as it is; else a run id, whose label_issues.csv is downloaded
    into `dest`. An unknown run, or one that flagged nothing, is one ConfigError line.

    A run that was itself trained without some rows (its own `data.exclude_rows`) flagged only among the rows
    it kept: its rows and the ones it left out are both left out again (a file of row numbers in `dest`), so a
    second label step does not bring the first one's rows back."""
    if Path(value).expanduser().is_file():
        return value
    from mlflow.exceptions import MlflowException

    from dlexp.diagnosis.labels import CSV
    from dlexp.tracking.process import client

    try:
        c = client(uri)
        run = c.get_run(value)
    except (MlflowException, StoreError):  # no such run, or no store yet: no run to read either way
        raise ConfigError(f"data.exclude_rows={value}: no such file and no run with that id in the store; give a "
                          "run id from `dlexp runs` or a file of row numbers (one a line)") from None
    try:
        kept = {Path(f.path).name for f in c.list_artifacts(run.info.run_id, "analysis")}
    except Exception:  # noqa: BLE001 - an unreadable artifact folder reads as an empty one
        kept = set()
    if CSV not in kept:
        raise ConfigError(f"data.exclude_rows={value}: that run kept no analysis/{CSV} (it flagged no labels, or "
                          "was not a classification run)")
    dest.mkdir(parents=True, exist_ok=True)
    own = c.download_artifacts(run.info.run_id, f"analysis/{CSV}", str(dest / run.info.run_id))
    before = run.data.params.get("data.exclude_rows")
    if not before or before in ("None", "null") or depth >= 20:
        return own
    from dlexp.data.exclude import read

    try:
        earlier = read(resolve(uri, before, dest, depth=depth + 1))
    except ConfigError:
        raise ConfigError(f"data.exclude_rows={value}: that run was itself trained without the rows of "
                          f"data.exclude_rows={before}, which is no longer a file or a run in the store; give a file "
                          "of the row numbers to leave out instead") from None
    rows = read(own) | earlier
    out = dest / f"{run.info.run_id}.rows"
    out.write_text("".join(f"{r}\n" for r in sorted(rows)))
    return str(out)
