"""`dlexp predict` and `dlexp register`: a run's MLflow model (tracking/model.py) used after the run."""

from __future__ import annotations

import sys
from pathlib import Path

from dlexp.errors import ConfigError, DataError, first_line
from dlexp.tracking import runs as tracking_runs
from dlexp.tracking.client import client
from dlexp.tracking.model import register
from dlexp.tracking.store import require_store, scrub

COLUMN = "prediction"  # the column added to the rows written out


def model_id(run) -> str:
    """The run's logged model; one line when it has none."""
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        raise ConfigError(f"run {run.info.run_id} has no model (only finished runs on tables and feature vectors "
                          "log one, from this version of dlexp on)")
    return outputs[-1].model_id  # a resumed run logs its model again: the newest


def predict(uri: str | None, run_id: str | None, rows: str, out: str | None) -> tuple[int, str]:
    """Score the CSV/TSV/Parquet file `rows` with the run's model; write the rows with a `prediction` column
    as CSV to `out` (stdout when None). Returns (rows scored, the run's id)."""
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
    check_rows(frame, model.metadata.get_input_schema(), rows)
    try:
        scored = model.predict(frame)
    except MlflowException as exc:  # the signature's check: a missing column, a value of the wrong type
        raise DataError(f"{rows} does not fit run {rid[:8]}'s model: {first_line(exc, mask=scrub)}") from None
    frame[COLUMN] = scored
    if out is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
    return len(frame), rid


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


def register_run(uri: str | None, run_id: str, name: str) -> int:
    """Register the run's model under `name` in MLflow's Model Registry; return the version."""
    uri = require_store(uri)
    c = client(uri)
    run = tracking_runs.resolve_run(c, run_id)
    return register(c, uri, run.info.run_id, name, model_id(run))
