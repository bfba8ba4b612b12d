"""A recipe's runs in MLflow: what kind of run `--from` names, the trail a stopped recipe left, and the
labels (action, round) put on each candidate once it has trained."""

from __future__ import annotations

import json

from mlflow.entities import RunTag

from dlexp.errors import StoreError
from dlexp.tracking.process import _first_line, client
from dlexp.tracking.runs import _load_text, _resolve_run, settle

TRAIL = "recipe/trail.json"


def run_info(uri: str | None, run_id: str) -> dict:
    """{"run_id", "status", "kind" (recipe, seeds, curve or None), "experiment"} of a stored run."""
    c = client(uri)
    run = settle(c, _resolve_run(c, run_id))
    return {"run_id": run.info.run_id, "status": run.info.status, "kind": run.data.tags.get("dlexp.kind"),
            "experiment": c.get_experiment(run.info.experiment_id).name}


def read_trail(uri: str | None, run_id: str) -> dict | None:
    """The document a recipe's parent run keeps in recipe/trail.json; None when it has none."""
    c = client(uri)
    try:
        return json.loads(_load_text(c, run_id, TRAIL))
    except (OSError, ValueError):
        return None
    except Exception:  # a remote store without the file
        return None


def label(uri: str | None, run_id: str, tags: dict[str, str]) -> None:
    """Add tags to a run that has ended (a candidate's action and round)."""
    try:
        client(uri).log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])
    except Exception as exc:
        raise StoreError(f"cannot tag run {run_id}: {_first_line(exc)}") from None
