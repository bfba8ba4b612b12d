"""Lightning DDP from `dlexp train`: two CPU ranks (gloo), one run, errors measured once; a dead rank stops all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
TINY = ["data.n_train=500", "data.n_train_dev=300", "data.n_dev=300", "data.n_test=300"]


def _runs(runs_dir):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=f"sqlite:///{runs_dir / 'mlflow.db'}")
    return c, c.search_runs([e.experiment_id for e in c.search_experiments()])


def test_ddp_on_two_cpu_ranks_trains_one_run_and_resumes(runs_dir, dlexp_proc):
    first = dlexp_proc("train", *DDP, *TINY, "trainer.max_epochs=2")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("dlexp diagnosis") == 1          # rank 0 alone reports
    assert "epoch 2/2" in first.stdout and "epoch 3/" not in first.stdout
    c, runs = _runs(runs_dir)
    assert len(runs) == 1                                        # one MLflow run for both ranks
    run = runs[0]
    assert run.info.status == "FINISHED"
    doc = json.loads((Path(c.download_artifacts(run.info.run_id, "diagnosis.json"))).read_text())
    # measured once, on the whole of each split (not on one rank's half)
    assert doc["sizes"] == {"train": 500, "train_dev": 300, "dev": 300, "test": 300}
    assert len(c.get_metric_history(run.info.run_id, "epoch/train_loss")) == 2
    assert "last.ckpt" in {Path(f.path).name for f in c.list_artifacts(run.info.run_id, "checkpoints")}

    # the console script, and --resume, under DDP too: the same run goes on to epoch 3
    script = Path(sys.executable).with_name("dlexp")
    more = subprocess.run([str(script), "train", "--resume", run.info.run_id, "trainer.max_epochs=3"],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert more.returncode == 0, more.stderr
    assert "epoch 3/3" in more.stdout and "epoch 2/3" not in more.stdout
    c, runs = _runs(runs_dir)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert len(c.get_metric_history(run.info.run_id, "epoch/train_loss")) == 3


def test_a_rank_that_dies_ends_the_command_with_one_line(runs_dir):
    import psutil

    proc = subprocess.Popen([sys.executable, "-m", "dlexp", "train", *DDP, *TINY, "trainer.max_epochs=500"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        for line in proc.stdout:  # training is under way on both ranks
            if line.startswith("epoch 2/"):
                break
        ranks = [p for p in psutil.Process(proc.pid).children(recursive=True)
                 if "dlexp.training.ddp" in " ".join(p.cmdline())]
        assert len(ranks) == 1
        ranks[0].kill()
        try:  # the command ends by itself once its rank is gone, rather than waiting on it
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the command still ran 60 s after its DDP rank 1 was killed")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlexp: error: DDP rank 1 was killed by SIGKILL"), err
    c, runs = _runs(runs_dir)
    assert len(runs) == 1
    deadline = time.monotonic() + 20  # the tracking process ends the run once the training process is gone
    while runs[0].info.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
        c, runs = _runs(runs_dir)
    assert runs[0].info.status == "FAILED"
