"""A run's model as an MLflow model: a pyfunc under `model` (a LoggedModel of the run) that takes raw inputs:
a table's raw columns (x0, x1, ... for feature vectors), a DataFrame with a text run's text column (or
`{"text": [...]}`), or one with a column `path` of image files. The training process writes the model
folder (training/export.py: weights, spec, the fitted preprocessing); the tracking process logs it here, so
`dlexp train` never imports MLflow's model code:

    mlflow.pyfunc.load_model("runs:/RUN_ID/model").predict(frame)   # class names, or numbers (regression)

`register` puts a run's model in MLflow's Model Registry (`tracking.register=NAME`, `dlexp register`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.entities import LoggedModelOutput


NAME = "model"  # the run's model: runs:/RUN_ID/model
KIND = "dlexp_kind"  # the MLmodel's metadata: what the model reads (table, flat, text, images)
REQUIREMENTS = ("dlexp", "torch", "pytorch-lightning", "scikit-learn", "pandas", "numpy", "omegaconf", "mlflow")


class DlexpModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper: loads the model folder with dlexp's `Predictor` and scores a frame of raw rows."""

    def load_context(self, context):
        from dlexp.training.export import Predictor

        self.predictor = Predictor(Path(context.artifacts["model"]))

    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.predictor.predict(frame)


def signature(spec: dict):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec(c["type"], c["name"]) for c in spec["inputs"]]),
                          outputs=Schema([ColSpec(spec["output"])]))


def log(client, run_id: str, experiment_id: str, folder: str, spec: dict) -> str:
    """Log the model folder as the run's pyfunc model `model`; return the LoggedModel's id."""
    from mlflow.models import Model

    logged = client.create_logged_model(experiment_id, name=NAME, source_run_id=run_id, model_type="dlexp")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / NAME
        meta = Model(artifact_path=logged.artifact_location, model_uuid=logged.model_id, run_id=run_id,
                     model_id=logged.model_id)
        mlflow.pyfunc.save_model(str(path), python_model=DlexpModel(), artifacts={"model": folder},
                                 signature=signature(spec), input_example=pd.DataFrame(spec["example"]),
                                 pip_requirements=_requirements(), mlflow_model=meta,
                                 metadata={KIND: spec.get("kind", "table")})
        client.log_model_artifacts(logged.model_id, str(path))
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    client.finalize_logged_model(logged.model_id, "READY")
    return logged.model_id


def register(client, uri: str, run_id: str, name: str, model_id: str) -> int:
    """Register the run's model under `name` (created if new); return the new version's number."""
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(uri)  # the registry resolves models:/ID on the current tracking URI
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(name, source=f"models:/{model_id}", run_id=run_id, model_id=model_id)
    return int(version.version)


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in REQUIREMENTS:
        try:
            found.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pass
    return found
