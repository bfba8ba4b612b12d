"""A team's tracking server: `mlflow server` on PostgreSQL with a shared artifact folder (one per session),
and a warehouse table in the same PostgreSQL for `data=sql`. Real processes throughout, no mock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

pytestmark = pytest.mark.slow

TINY = ["trainer.max_epochs=2", "data.n_train=500", "data.n_train_dev=300", "data.n_dev=300", "data.n_test=300"]


def _popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dlexp", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))


@pytest.fixture(scope="module")
def team(module_runs_dir, mlflow_server, postgres):
    """Four `dlexp train` at once against the server: three synthetic seeds and one `data=sql` on a
    PostgreSQL table. Returns (server URL, [(args, returncode, stdout, stderr)])."""
    import numpy as np
    import pandas as pd
    import sqlalchemy

    rng = np.random.default_rng(0)
    n = 1000
    houses = pd.DataFrame({"sqft": rng.normal(1500, 400, n).round(), "rooms": rng.integers(1, 6, n),
                           "city": rng.choice(["paris", "lyon", "nice"], n)})
    price = houses.sqft * 200 + houses.rooms * 5000 + rng.normal(0, 20000, n)
    houses["label"] = np.where(price > price.median(), "high", "low")
    warehouse = postgres("warehouse")
    engine = sqlalchemy.create_engine(warehouse)
    with engine.begin() as conn:
        houses.to_sql("houses", conn, index=False, if_exists="replace")
    engine.dispose()
    server = ["tracking=server", f"tracking.uri={mlflow_server}", "tracking.experiment=team"]
    jobs = [["train", *server, *TINY, f"seed={s}"] for s in (0, 1, 2)]
    jobs.append(["train", *server, "data=sql", f"data.url='{warehouse}'",
                 "data.query='SELECT sqft, rooms, city, label FROM houses'", "data.target=label", "baseline.human_error=0.1",
                 "trainer.max_epochs=2"])
    procs = [_popen(*job) for job in jobs]
    done = []
    for job, proc in zip(jobs, procs):
        out, err = proc.communicate(timeout=300)
        done.append((job, proc.returncode, out, err))
    return mlflow_server, done


def _client(url):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=url)


def test_four_concurrent_trainings_lose_nothing(team):
    url, done = team
    for job, code, out, err in done:
        assert code == 0, f"{job}: {err}"
    c = _client(url)
    exp = c.get_experiment_by_name("team")
    runs = c.search_runs([exp.experiment_id])
    assert len(runs) == 4
    for run in runs:
        assert run.info.status == "FINISHED"
        for name in ("error/train", "error/train_dev", "error/dev", "error/test", "gap/variance"):
            assert name in run.data.metrics, (run.info.run_id, name)
        assert run.data.tags["dlexp.verdict"]
        assert len(c.get_metric_history(run.info.run_id, "epoch/train_loss")) == 2  # every epoch arrived
        files = {f.path for f in c.list_artifacts(run.info.run_id)}
        assert {"diagnosis.json", "config.yaml", "checkpoints"} <= files, files
    # each process printed its own run's id, and the four are the four in the store
    printed = {line.split("run ")[-1].strip() for _, _, out, _ in done for line in out.splitlines()
               if line.startswith("dlexp diagnosis")}
    assert printed == {r.info.run_id for r in runs}


def test_sql_source_reads_a_postgresql_table(team):
    url, done = team
    job, code, out, err = done[3]
    assert code == 0, err
    assert "training mlp on sql (" in out
    run_id = next(line.split("run ")[-1].strip() for line in out.splitlines() if line.startswith("dlexp diagnosis"))
    run = _client(url).get_run(run_id)
    assert run.data.params["data.name"] == "sql"
    assert run.data.params["data.target"] == "label"
    assert "password" not in run.data.params["data.url"]


def test_runs_diagnose_and_report_through_the_server(team, tmp_path, dlexp_proc):
    url, done = team
    run_id = next(line.split("run ")[-1].strip() for line in done[0][2].splitlines()
                  if line.startswith("dlexp diagnosis"))
    listed = dlexp_proc("runs", "--uri", url, "--json")
    assert listed.returncode == 0, listed.stderr
    assert run_id in {row["run_id"] for row in json.loads(listed.stdout)}

    again = dlexp_proc("diagnose", run_id, "--uri", url, "--json")
    assert again.returncode == 0, again.stderr
    stored = _client(url).get_run(run_id)
    assert json.loads(again.stdout)["verdict"] == stored.data.tags["dlexp.verdict"]

    page = tmp_path / "page.html"
    made = dlexp_proc("report", run_id, "--uri", url, "--out", str(page))
    assert made.returncode == 0, made.stderr
    html = page.read_text()
    assert run_id in html and "data:image/png;base64," in html  # the run's plots, read back from the server
    assert "report.html" in {f.path for f in _client(url).list_artifacts(run_id)}


class _Refuse(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self):
        self.paths.append(self.path)
        self.send_response(403)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"Forbidden")

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_a_server_that_is_down_or_refuses_gives_one_line(runs_dir, dlexp_proc):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"
    refusing = HTTPServer(("127.0.0.1", 0), _Refuse)
    threading.Thread(target=refusing.serve_forever, daemon=True).start()
    refuses = f"http://127.0.0.1:{refusing.server_address[1]}"
    try:
        # each within run_dlexp's deadline; dlexp asks the server's /health once, MLflow would retry for minutes
        checks = [(dlexp_proc("train", "tracking=server", f"tracking.uri={down}", *TINY), down, "cannot reach"),
                  (dlexp_proc("runs", "--uri", down), down, "cannot reach"),
                  (dlexp_proc("runs", "--uri", refuses), refuses, "refused dlexp (HTTP 403")]
        for r, url, why in checks:
            assert r.returncode == 3, r.stderr
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("dlexp: error:") and why in lines[0], r.stderr
            assert url in lines[0]
        assert _Refuse.paths == ["/health"]  # asked once, no retries
    finally:
        refusing.shutdown()
