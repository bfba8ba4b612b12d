"""A team server that keeps secrets and lets in only the team: MLflow's own authentication
(`mlflow server --app-name basic-auth`, one per session), dlexp's commands with credentials from the
environment, one line for missing or wrong ones, and no password stored anywhere a run keeps things.
Real processes throughout: the server, `dlexp` commands, a PostgreSQL warehouse for `data=sql`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

WAREHOUSE_SECRET = "wh-s3cret-7781"
TINY = ["trainer.max_epochs=1", "data.n_train_dev=100", "data.n_dev=100", "data.n_test=100", "model.hidden=[16]",
        "baseline.human_error=0.1"]
QUERY = "data.query='SELECT sqft, rooms, city, label FROM houses'"


def _dlexp(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlexp", *args], capture_output=True, text=True, timeout=600,
                          env=env)


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def team(module_runs_dir, auth_server, postgres):
    """Two runs on the authenticated server from one PostgreSQL table: A with both passwords in its
    overrides (the server's in tracking.uri, the warehouse's in data.url), B the way the README recommends
    (the server's credentials in MLFLOW_TRACKING_USERNAME / _PASSWORD, the warehouse URL from a variable)."""
    import numpy as np
    import pandas as pd
    import sqlalchemy

    rng = np.random.default_rng(1)
    n = 800
    houses = pd.DataFrame({"sqft": rng.normal(1500, 400, n).round(), "rooms": rng.integers(1, 6, n),
                           "city": rng.choice(["paris", "lyon", "nice"], n)})
    price = houses.sqft * 200 + houses.rooms * 5000 + rng.normal(0, 20000, n)
    houses["label"] = np.where(price > price.median(), "high", "low")
    plain = postgres("secrets")
    engine = sqlalchemy.create_engine(plain)
    with engine.begin() as conn:
        houses.to_sql("houses", conn, index=False, if_exists="replace")
    engine.dispose()
    # pgserver trusts local connections: any password gets in, so the URL may carry one
    warehouse = plain.replace("postgres:@", f"postgres:{WAREHOUSE_SECRET}@", 1)
    assert WAREHOUSE_SECRET in warehouse
    url, (user, password) = auth_server["url"], auth_server["admin"]
    with_password = url.replace("http://", f"http://{user}:{password}@", 1)
    a = _dlexp("train", "tracking=server", f"tracking.uri={with_password}", "tracking.experiment=secrets",
               "data=sql", f"data.url='{warehouse}'", QUERY, "data.target=label", *TINY, env=_env())
    creds = _env(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=password, WAREHOUSE_URL=warehouse)
    b = _dlexp("train", "tracking=server", f"tracking.uri={url}", "tracking.experiment=secrets", "data=sql",
               "data.url='${oc.env:WAREHOUSE_URL}'", QUERY, "data.target=label", "model.dropout=0.2", *TINY,
               env=creds)
    return {"url": url, "a": a, "b": b, "creds": creds, "user": user, "password": password,
            "root": auth_server["root"], "runs": module_runs_dir}


def _runs(team):
    from mlflow.tracking import MlflowClient

    os.environ.update(MLFLOW_TRACKING_USERNAME=team["user"], MLFLOW_TRACKING_PASSWORD=team["password"])
    try:
        c = MlflowClient(tracking_uri=team["url"])
        exp = c.get_experiment_by_name("secrets")
        return c, c.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    finally:
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(k, None)


def test_both_trainings_finish_on_the_authenticated_server(team):
    for name in ("a", "b"):
        assert team[name].returncode == 0, team[name].stderr
    # a password in an override: one line saying where credentials belong
    assert "credentials belong in the environment" in team["a"].stderr
    assert "MLFLOW_TRACKING_USERNAME" in team["a"].stderr
    assert "credentials belong" not in team["b"].stderr  # nothing to say when none was given
    _, runs = _runs(team)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]


def test_no_password_is_stored_anywhere_a_run_keeps_things(team):
    secrets = (WAREHOUSE_SECRET, team["password"])
    c, runs = _runs(team)
    for run in runs:
        for kind, values in (("param", run.data.params), ("tag", run.data.tags)):
            for key, value in values.items():
                for secret in secrets:
                    assert secret not in value, f"{kind} {key} of {run.info.run_id} holds a password"
    run_a = runs[0]
    assert "***@" in run_a.data.params["data.url"] and "***@" in run_a.data.tags["dlexp.overrides"]
    # every file the server and dlexp wrote: the server's store (params, tags, descriptions), its artifacts
    # (config.yaml, diagnosis.json with the next-step commands, checkpoints, plots), dlexp's own folder
    for folder in (team["root"], team["runs"]):
        for path in folder.rglob("*"):
            if path.is_file() and path.name != "auth.ini":  # the server's own admin settings
                data = path.read_bytes()
                for secret in secrets:
                    assert secret.encode() not in data, f"{path} holds a password"
    doc = json.loads((team["root"] / "artifacts").rglob("diagnosis.json").__next__().read_text())
    assert doc["actions"] and all(WAREHOUSE_SECRET not in (a["command"] or "") for a in doc["actions"])


def test_commands_with_credentials_from_the_environment(team, tmp_path):
    _, runs = _runs(team)
    a, b = (r.info.run_id for r in runs)
    env, uri = team["creds"], ["--uri", team["url"]]
    listed = _dlexp("runs", "--json", *uri, env=env)
    assert listed.returncode == 0, listed.stderr
    assert {r["run_id"] for r in json.loads(listed.stdout)} >= {a, b}
    diagnosed = _dlexp("diagnose", a, "--json", *uri, env=env)
    assert diagnosed.returncode == 0, diagnosed.stderr
    assert json.loads(diagnosed.stdout)["run_id"] == a
    compared = _dlexp("compare", a, b, *uri, env=env)
    assert compared.returncode == 0, compared.stderr
    out = tmp_path / "report.html"
    reported = _dlexp("report", b, "--out", str(out), *uri, env=env)
    assert reported.returncode == 0, reported.stderr
    text = out.read_text()
    assert b in text and WAREHOUSE_SECRET not in text and team["password"] not in text


@pytest.mark.parametrize("given", ["missing", "wrong"])
def test_missing_or_wrong_credentials_are_one_line_naming_the_variables(team, given):
    creds = {} if given == "missing" else {"MLFLOW_TRACKING_USERNAME": team["user"],
                                           "MLFLOW_TRACKING_PASSWORD": "wrong"}
    commands = [["runs", "--uri", team["url"]]]
    if given == "missing":  # what a new team member meets first
        commands.append(["train", "tracking=server", f"tracking.uri={team['url']}", "tracking.experiment=secrets",
                         *TINY])
    for args in commands:
        result = _dlexp(*args, env=_env(**creds))
        assert result.returncode == 3, result.stderr
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("dlexp: error:"), result.stderr
        assert "MLFLOW_TRACKING_USERNAME" in lines[0] and "MLFLOW_TRACKING_PASSWORD" in lines[0]
        assert "Traceback" not in result.stderr
    _, runs = _runs(team)
    assert len(runs) == 2  # a refused train leaves no run behind


def test_next_on_a_run_whose_stored_commands_hold_masked_passwords(team):
    """A run trained with the server's password in tracking.uri stores its next steps with `***` in place of
    the password: `dlexp next` trains them into the store it read the run from (--uri, credentials from the
    environment), not into a URL with `***`; a masked database URL is one line saying how to give it."""
    url, (user, password) = team["url"], (team["user"], team["password"])
    with_password = url.replace("http://", f"http://{user}:{password}@", 1)
    c = _dlexp("train", "tracking=server", f"tracking.uri={with_password}", "tracking.experiment=secrets-next",
               *TINY, env=_env())
    assert c.returncode == 0, c.stderr
    c_id = c.stdout.split("· run ", 1)[1].split()[0]
    done = _dlexp("next", c_id, "--uri", url, env=team["creds"])
    assert done.returncode == 0, done.stderr
    client, _ = _runs(team)
    os.environ.update(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=password)
    try:
        exp = client.get_experiment_by_name("secrets-next")
        runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    finally:
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(k, None)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert runs[1].data.tags["dlexp.follows"] == c_id
    assert all(password not in v for v in (*runs[1].data.params.values(), *runs[1].data.tags.values()))
    # run A also repeats data.url with the warehouse's password masked: one line, exit 2, nothing trained
    a = _runs(team)[1][0].info.run_id
    shown = _dlexp("diagnose", a, "--json", "--uri", url, env=team["creds"])
    step = next(i for i, act in enumerate(json.loads(shown.stdout)["actions"], 1) if act["command"])
    refused = _dlexp("next", a, str(step), "--uri", url, env=team["creds"])
    lines = [ln for ln in refused.stderr.splitlines() if ln.strip()]
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "data.url" in lines[0] and "oc.env" in lines[0] and "Traceback" not in refused.stderr
    assert len(_runs(team)[1]) == 2
