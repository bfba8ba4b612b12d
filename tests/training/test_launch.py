"""Jobs through Hydra's launchers, results back through files: a list of jobs, a failing job, joblib, submitit's
local executor (as on a Slurm node: each job pickled and run in its own process)."""

from __future__ import annotations

import pytest

from dlexp.training.launch import run_jobs

TINY = ["trainer.max_epochs=1", "data.n_train=300", "data.n_train_dev=100", "data.n_dev=100", "data.n_test=100",
        "model.hidden=[16]"]


@pytest.mark.slow
def test_a_job_list_through_joblib_returns_each_result_in_order_and_names_the_failure(runs_dir):
    from dlexp.tracking import runs as tracking_runs

    results = run_jobs(TINY + ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                       jobs=[["model.dropout=0.2"], ["optimizer.lr=-1"]], tags={"dlexp.group": "g1"})
    assert [r.overrides[-1] for r in results] == ["model.dropout=0.2", "optimizer.lr=-1"]
    ok, failed = results
    assert ok.ok and ok.report is not None and ok.run_id == ok.report.run_id
    assert not failed.ok and "optimizer.lr must be positive" in failed.error and failed.exc.exit_code == 2
    run = tracking_runs.load_run(None, ok.run_id)
    assert run["config"]["model"]["dropout"] == 0.2
    summary = [r for r in tracking_runs.list_runs(None) if r["run_id"] == ok.run_id]
    assert summary and summary[0]["status"] == "FINISHED"
    from dlexp.tracking.client import client

    assert client(None).get_run(ok.run_id).data.tags["dlexp.group"] == "g1"


def test_a_sweep_with_a_failing_job_under_joblib_exits_non_zero_naming_it(runs_dir, dlexp_proc):
    result = dlexp_proc("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY,
                        "optimizer.lr=-1,-2")
    assert result.returncode != 0
    assert "2 of 2 jobs failed" in result.stderr and "optimizer.lr=-1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_sweep_through_submitit_local_finishes_its_runs_and_names_the_failing_job(runs_dir, dlexp_proc):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="dlexp[slurm] brings the submitit launcher")
    from dlexp.tracking import runs as tracking_runs

    result = dlexp_proc("train", "-m", "hydra/launcher=submitit_local", *TINY, "optimizer.lr=0.001,0.01,-1")
    assert result.returncode == 2, result.stderr
    assert "1 of 3 jobs failed" in result.stderr and "optimizer.lr=-1" in result.stderr
    assert "Traceback" not in result.stderr
    assert ".submitit" in result.stdout, "the command says where each job's output went"
    runs = tracking_runs.list_runs(None)
    assert sorted(r["status"] for r in runs) == ["FINISHED", "FINISHED"]
    lrs = sorted(tracking_runs.load_run(None, r["run_id"])["config"]["optimizer"]["lr"] for r in runs)
    assert lrs == [0.001, 0.01]
