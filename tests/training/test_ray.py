"""Hydra's Ray launcher (`dlexp[ray]`) on a local Ray with 2 workers: one line per job, a summary, full runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TINY = ["trainer.max_epochs=1", "data.n_train=500", "data.n_train_dev=300", "data.n_dev=300", "data.n_test=300"]


def test_a_sweep_on_ray_prints_one_line_per_job_and_a_summary(runs_dir, dlexp_proc):
    r = dlexp_proc("train", "-m", "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
                   "model.dropout=0,0.2", *TINY)
    assert r.returncode == 0, r.stderr
    jobs = [line for line in r.stdout.splitlines() if "dlexp: job #" in line]
    assert len(jobs) == 2, r.stdout
    # nothing of the jobs' long output crosses Ray's prefixed, de-duplicated log stream
    assert "dlexp diagnosis" not in r.stdout and "epoch 1/1" not in r.stdout and "next steps" not in r.stdout

    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=f"sqlite:///{runs_dir / 'mlflow.db'}")
    runs = c.search_runs([e.experiment_id for e in c.search_experiments()])
    assert len(runs) == 2
    summary = r.stdout[r.stdout.index("2 jobs"):]
    for run in runs:
        assert run.info.status == "FINISHED"
        dropout = run.data.params["model.dropout"]
        line = next(j for j in jobs if f"model.dropout={float(dropout):g} " in j or f"model.dropout={dropout} " in j)
        assert run.info.run_id in line and f"verdict {run.data.tags['dlexp.verdict']}" in line
        assert run.info.run_id in summary
        # the whole diagnosis is in the run
        doc = json.loads(Path(c.download_artifacts(run.info.run_id, "diagnosis.json")).read_text())
        assert doc["verdict"] == run.data.tags["dlexp.verdict"] and doc["sizes"]["train"] == 500
