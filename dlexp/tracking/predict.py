"""`dlexp predict` and `dlexp register`: a run's MLflow model (tracking/model.py) used after the run."""

from __future__ import annotations

import sys
from pathlib import Path

from dlexp.errors import ConfigError, DataError, first_line
from dlexp.tracking import runs as tracking_runs
from dlexp.tracking.client import client
from dlexp.tracking.model import KIND, register
from dlexp.tracking.store import require_store, scrub

COLUMN = "prediction"  # the column added to the rows written out
CHUNK = {"images": 256, "text": 4096, "table": 50_000}  # rows scored per step of the progress bar


def score(model, frame, chunk: int):
    """The model's predictions for `frame`, with a progress bar on stderr when that is a terminal and the
    file takes more than one step (`chunk` rows)."""
    import numpy as np
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if len(frame) <= chunk or not console.is_terminal:
        return model.predict(frame)
    parts = []
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("scoring", total=len(frame))
        for start in range(0, len(frame), chunk):
            parts.append(np.asarray(model.predict(frame.iloc[start:start + chunk])))
            bar.advance(task, len(parts[-1]))
    return np.concatenate(parts)


def model_id(run) -> str:
    """The run's logged model; one line when it has none."""
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        raise ConfigError(f"run {run.info.run_id} has no model (finished runs on tables, feature vectors, text and "
                          "images log one, from this version of dlexp on; data=custom and data.task=lm runs do not)")
    return outputs[-1].model_id  # a resumed run logs its model again: the newest


def predict(uri: str | None, run_id: str | None, rows: str, out: str | None) -> tuple[int, str]:
    """Score the CSV/TSV/Parquet file `rows` with the run's model; write the rows with a `prediction` column
    to `out`, as its suffix says (CSV to stdout when None). Returns (rows scored, the run's id)."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from dlexp.data.table import read

    uri = require_store(uri)
    run = tracking_runs.resolve_run(client(uri), run_id)
    rid = run.info.run_id
    mid = model_id(run)
    frame = read(rows, "INPUT")
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{mid}")  # the run's model (runs:/RUN_ID/model names it too)
    kind = (model.metadata.metadata or {}).get(KIND, "table")
    schema = model.metadata.get_input_schema()
    check_rows(frame, schema, rows)
    if kind == "images":
        from dlexp.training.export import PATH

        check_paths(frame[PATH], PATH, rows)
    try:
        frame[COLUMN] = score(model, frame[schema.input_names()], CHUNK.get(kind, CHUNK["table"]))
    except MlflowException as exc:  # the signature's check: a missing column, a value of the wrong type
        raise DataError(f"{rows} does not fit run {rid[:8]}'s model: {first_line(exc, mask=scrub)}") from None
    if out is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write(frame, Path(out))
    return len(frame), rid


def write(frame, out: Path) -> None:
    """The scored rows as the output's suffix says: Parquet (.parquet, .pq), TSV (.tsv), else CSV."""
    suffix = out.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False, sep="\t" if suffix == ".tsv" else ",")


def check_rows(frame, schema, where: str) -> None:
    """One DataError line for a column the model reads that the rows lack, or one holding a value of the
    wrong kind (text where numbers are needed), named with its first row."""
    import numpy as np
    import pandas as pd

    names = schema.input_names()
    for spec in schema.inputs:
        if spec.name not in frame.columns:
            raise DataError(f"{where} has no column {spec.name!r} (the model reads {', '.join(names)})")
        empty = frame[spec.name].isna().to_numpy()
        if spec.required and empty.any():
            raise DataError(f"column {spec.name!r} of {where} has no value at row {int(np.flatnonzero(empty)[0]) + 1}"
                            f" ({int(empty.sum())} in all); the model needs every one")
        kind = str(spec.type)
        if "double" in kind or "long" in kind or "float" in kind or "integer" in kind:
            values = frame[spec.name]
            bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
            if bad.any():
                pos = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(f"column {spec.name!r} of {where} needs numbers but row {pos + 1} holds "
                                f"{values.iloc[pos]!r}")


def check_paths(paths, column: str, where: str) -> None:
    """One DataError line for the first image path (relative to the current directory) that names no file."""
    for i, path in enumerate(paths):
        if not Path(str(path)).expanduser().is_file():
            raise DataError(f"column {column!r} of {where} names no image file at row {i + 1}: {path} (paths are read "
                            "relative to the current directory)")


def register_run(uri: str | None, run_id: str, name: str) -> int:
    """Register the run's model under `name` in MLflow's Model Registry; return the version."""
    from dlexp.config.checks import check_model_name

    check_model_name(name)
    uri = require_store(uri)
    c = client(uri)
    run = tracking_runs.resolve_run(c, run_id)
    return register(c, uri, run.info.run_id, name, model_id(run))
