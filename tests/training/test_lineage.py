"""`dlexp next`: a stored run's next step, run for real, tagged with what it follows, named and described in
MLflow the way dlexp speaks (checked through MLflow's own API, as the UI reads it)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import one_error_line

from dlexp.cli import app

pytestmark = pytest.mark.slow

SMALL = ["data.n_train=300", "data.n_train_dev=100", "data.n_dev=100", "data.n_test=100", "model.hidden=[8]",
         "trainer.max_epochs=1"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def lineage(module_runs_dir):
    """A run, then `dlexp next` on it: its first step (a bigger model) trained for real."""
    from mlflow.tracking import MlflowClient

    base = invoke("train", *SMALL)
    assert base.exit_code == 0, base.output
    client = MlflowClient(tracking_uri=f"sqlite:///{module_runs_dir}/mlflow.db")
    exp = client.get_experiment_by_name("dlexp")
    (first,) = client.search_runs([exp.experiment_id])
    followed = invoke("next")  # the latest run, step 1
    assert followed.exit_code == 0, followed.output
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
    assert len(runs) == 2
    return {"client": client, "experiment": exp, "base": first, "new": runs[0], "output": followed.stdout}


def _step_one(run) -> dict:
    doc = json.loads(Path(run.info.artifact_uri.removeprefix("file://"), "diagnosis.json").read_text())
    return doc["actions"][0]


def test_next_runs_the_printed_command_tagged_with_the_run_and_step_it_follows(lineage):
    base, new = lineage["base"], lineage["new"]
    step = _step_one(base)
    assert step["action"].startswith("Bigger model")
    assert new.data.tags["dlexp.follows"] == base.info.run_id
    assert new.data.tags["dlexp.action"] == step["action"]
    # the exact command the diagnosis printed: its overrides are the new run's, its widths in the params
    assert json.loads(new.data.tags["dlexp.overrides"]) == shlex.split(step["command"])[2:]
    assert new.data.params["model.hidden"] == "[16]"
    out = lineage["output"]
    assert f"$ {step['command']}" in out
    # the new run's diagnosis, then the comparison with the run it follows, errors side by side
    assert out.index("dlexp diagnosis") < out.index("against the run it follows")
    dev_a, dev_b = base.data.metrics["error/dev"], new.data.metrics["error/dev"]
    assert f"{dev_a:.2%}" in out.split("against the run it follows")[1]
    assert f"{dev_b - dev_a:+.2%}" in out.split("against the run it follows")[1]
    # the same data config and seed: the same examples, so the comparison is paired
    assert "paired: McNemar exact" in out.split("against the run it follows")[1]


def test_runs_shows_which_run_and_step_each_run_follows(lineage):
    base, new = lineage["base"], lineage["new"]
    table = invoke("runs")
    assert table.exit_code == 0, table.output
    row = next(line for line in table.stdout.splitlines() if new.info.run_id in line)
    assert f"{base.info.run_id[:8]} · bigger model" in row
    rows = {r["run_id"]: r for r in json.loads(invoke("runs", "--json").stdout)}
    assert rows[new.info.run_id]["follows"] == base.info.run_id
    assert rows[new.info.run_id]["action"] == new.data.tags["dlexp.action"]
    assert rows[base.info.run_id]["follows"] is None


def test_the_mlflow_ui_gets_a_training_experiment_readable_names_and_descriptions(lineage):
    client, base, new = lineage["client"], lineage["base"], lineage["new"]
    assert lineage["experiment"].tags["mlflow.experimentKind"] == "custom_model_development"
    assert base.info.run_name == "mlp · synthetic"
    assert new.info.run_name == "mlp · synthetic · bigger model"
    text = client.get_run(base.info.run_id).data.tags["mlflow.note.content"]
    assert f"**Verdict: `{base.data.tags['dlexp.verdict']}`**" in text
    lo, hi = base.data.metrics["gap/avoidable_bias/lo"], base.data.metrics["gap/avoidable_bias/hi"]
    assert f"| gap/avoidable_bias | {base.data.metrics['gap/avoidable_bias']:.2%} | [{lo:.2%}, {hi:.2%}] |" in text
    assert f"`{_step_one(base)['command']}`" in text
    text = client.get_run(new.info.run_id).data.tags["mlflow.note.content"]
    assert f"Follows run `{base.info.run_id}`" in text
    dev_a, dev_b = base.data.metrics["error/dev"], new.data.metrics["error/dev"]
    row = next(line for line in text.splitlines() if line.startswith("| error/dev | "))
    assert row.startswith(f"| error/dev | {dev_a:.2%} | {dev_b:.2%} | {dev_b - dev_a:+.2%} | [")
    assert row.endswith("| paired |")
    assert text.index("Compared with run") < text.index("**Verdict")


def test_bad_steps_are_one_line_and_a_non_zero_exit(lineage):
    base = lineage["base"]
    rid = base.info.run_id
    n = len(json.loads(Path(base.info.artifact_uri.removeprefix("file://"), "diagnosis.json").read_text())["actions"])
    one_error_line(invoke("next", "0123456789abcdef0123456789abcdef"), "no run with id", "dlexp runs")
    one_error_line(invoke("next", rid, str(n + 1)), f"N must be 1 to {n}", f"got {n + 1}")
    one_error_line(invoke("next", rid, "0"), f"N must be 1 to {n}")
    one_error_line(invoke("next", rid, "two"), "must be a number")
    # a run that lost its config: its steps are what-if advice with no command to run
    config = Path(base.info.artifact_uri.removeprefix("file://"), "config.yaml")
    saved = config.read_text()
    config.unlink()
    try:
        one_error_line(invoke("next", rid, "1"), "has no command to run")
    finally:
        config.write_text(saved)
    assert len(lineage["client"].search_runs([lineage["experiment"].experiment_id])) == 2  # nothing trained


def test_ui_opens_mlflows_model_training_view_on_the_experiment(lineage, monkeypatch):
    from dlexp.tracking import serve

    monkeypatch.setattr(serve, "serve", lambda cmd, env: 0)  # the server itself is MLflow's
    result = invoke("ui", "--port", "5123")
    assert result.exit_code == 0, result.output
    # MLflow 3's UI chooses its GenAI or Model-training view from this parameter (or the user's own switch)
    exp = lineage["experiment"].experiment_id
    assert f"http://localhost:5123/#/experiments/{exp}?workflowType=machine_learning" in result.stdout
