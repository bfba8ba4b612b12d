"""A recipe's runs in MLflow: what kind of run `--from` names and the trail a stopped recipe left (each
candidate's labels, action and round, go on its run from its start: `launch.run_jobs(job_tags=...)`)."""

from __future__ import annotations

import json

from dlexp.tracking.client import client
from dlexp.tracking.runs import load_text, resolve_run, settle

TRAIL = "recipe/trail.json"


def run_info(uri: str | None, run_id: str) -> dict:
    """{"run_id", "status", "kind" (recipe, seeds, curve or None), "experiment"} of a stored run."""
    c = client(uri)
    run = settle(c, resolve_run(c, run_id))
    return {"run_id": run.info.run_id, "status": run.info.status, "kind": run.data.tags.get("dlexp.kind"),
            "experiment": c.get_experiment(run.info.experiment_id).name}


def read_trail(uri: str | None, run_id: str) -> dict | None:
    """The document a recipe's parent run keeps in recipe/trail.json; None when it has none."""
    c = client(uri)
    try:
        return json.loads(load_text(c, run_id, TRAIL))
    except (OSError, ValueError):
        return None
    except Exception:  # a remote store without the file
        return None
