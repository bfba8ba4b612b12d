"""`dlexp diagnose RUN --metric ...`: runs another tool logged with MLflow's own API, diagnosed from their own
metric names, with and without train-dev and sizes, saved onto the run and read back."""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from dlexp.diagnosis import newcombe


def assert_one_error_line(exit_code: int, stdout: str, stderr: str, *named: str) -> None:
    assert exit_code not in (0, None), (stdout, stderr)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("dlexp: error: "), stderr
    assert "Traceback" not in stderr + stdout
    for word in named:
        assert word in lines[0], (word, lines[0])

METRICS = ["--metric", "train=train_acc", "--metric", "dev=val_acc", "--metric", "test=test_acc"]


def log_foreign_run(uri: str, *, train_dev: float | None = None, name: str = "their-script") -> str:
    """A run as a user's own script logs it: accuracies per epoch, under its own names, in its own experiment."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("their-project")
    with mlflow.start_run(run_name=name) as run:
        for step, (train, val) in enumerate([(0.80, 0.78), (0.95, 0.88), (0.97, 0.89)]):
            mlflow.log_metrics({"train_acc": train, "val_acc": val}, step=step)
        mlflow.log_metric("test_acc", 0.875)
        if train_dev is not None:
            mlflow.log_metric("holdout_acc", train_dev)
        mlflow.log_param("lr", 0.01)
    return run.info.run_id


@pytest.fixture(scope="module")
def foreign(module_runs_dir):
    module_runs_dir.mkdir()
    uri = f"sqlite:///{module_runs_dir}/mlflow.db"
    return {"uri": uri, "plain": log_foreign_run(uri), "with_td": log_foreign_run(uri, train_dev=0.96, name="td"),
            "to_save": log_foreign_run(uri)}


def diagnose_json(dlexp_proc, *args: str) -> dict:
    proc = dlexp_proc("diagnose", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_run_without_train_dev_is_judged_on_one_train_to_dev_gap(foreign, dlexp_proc):
    doc = diagnose_json(dlexp_proc, foreign["plain"], *METRICS, "--accuracy", "--human", "0.02")
    assert doc["errors"] == {"human": 0.02, "train": 0.03, "train_dev": None, "dev": 0.11, "test": 0.125}
    assert doc["gaps"] == {"avoidable_bias": 0.01, "variance_or_mismatch": 0.08, "dev_overfitting": 0.015}
    assert doc["verdict"] == "variance_or_mismatch"
    assert all(v is None for k, v in doc["intervals"].items() if k != "human")  # no sizes: no intervals
    notes = " ".join(doc["notes"])
    assert "cannot be split into variance and data mismatch" in notes and "No split sizes: no intervals" in notes
    assert doc["actions"][0]["action"].startswith("Measure a train-dev split")
    assert doc["source"]["metrics"] == {"train": "train_acc", "dev": "val_acc", "test": "test_acc"}
    # the terminal says the same: no train-dev, no intervals
    proc = dlexp_proc("diagnose", foreign["plain"], *METRICS, "--accuracy", "--human", "0.02")
    assert proc.returncode == 0, proc.stderr
    assert "not measured" in proc.stdout and "no split sizes, so no intervals" in proc.stdout
    assert "gap/variance_or_mismatch" in proc.stdout


def test_with_train_dev_and_sizes_the_four_gaps_get_intervals(foreign, dlexp_proc):
    doc = diagnose_json(dlexp_proc, foreign["with_td"], *METRICS, "--metric", "train_dev=holdout_acc", "--accuracy",
                        "--human", "0.02", "--size", "train=50000", "--size", "train-dev=5000", "--size", "dev=5000",
                        "--size", "test=5000")
    assert doc["errors"]["train_dev"] == pytest.approx(0.04)
    assert set(doc["gaps"]) == {"avoidable_bias", "variance", "data_mismatch", "dev_overfitting"}
    assert doc["verdict"] == "data_mismatch"  # dev 11% against train-dev 4%
    assert doc["intervals"]["data_mismatch"] == pytest.approx(newcombe(0.11, 5000, 0.04, 5000))
    assert doc["sizes"] == {"train": 50000, "train_dev": 5000, "dev": 5000, "test": 5000}
    assert not any("No split sizes" in n or "cannot be split" in n for n in doc["notes"])


def test_without_accuracy_the_figures_are_errors_and_the_names_are_flagged(foreign, dlexp_proc):
    doc = diagnose_json(dlexp_proc, foreign["plain"], *METRICS)
    assert doc["errors"]["train"] == 0.97 and doc["errors"]["human"] is None  # taken as error rates
    assert any("look like accuracies: add --accuracy" in n for n in doc["notes"])


def test_save_writes_the_diagnosis_onto_the_run_and_a_plain_diagnose_reads_it(foreign, dlexp_proc, tmp_path):
    run_id = foreign["to_save"]
    proc = dlexp_proc("diagnose", run_id, *METRICS, "--accuracy", "--human", "0.02", "--size", "dev=5000",
                      "--size", "train=50000", "--size", "test=5000", "--save")
    assert proc.returncode == 0, proc.stderr
    run = MlflowClient(foreign["uri"]).get_run(run_id)
    assert run.data.tags["dlexp.verdict"] == "variance_or_mismatch"
    assert json.loads(run.data.tags["dlexp.metrics_from"])["dev"] == "val_acc"
    assert "**Verdict: `variance_or_mismatch`**" in run.data.tags["mlflow.note.content"]
    assert run.data.metrics["error/dev"] == pytest.approx(0.11) and "error/train_dev" not in run.data.metrics
    assert run.data.metrics["val_acc"] == pytest.approx(0.89)  # the tool's own metrics stay as they were
    saved = json.loads(open(MlflowClient(foreign["uri"]).download_artifacts(run_id, "diagnosis.json", str(tmp_path)))
                       .read())
    assert saved["verdict"] == "variance_or_mismatch" and saved["sizes"]["dev"] == 5000
    # read back like any dlexp run: same errors, intervals from the saved sizes, a new human level re-judges it
    again = diagnose_json(dlexp_proc, run_id)
    assert again["errors"] == saved["errors"] and again["intervals"] == saved["intervals"]
    assert diagnose_json(dlexp_proc, run_id, "--human", "0.029")["errors"]["human"] == 0.029
    proc = dlexp_proc("diagnose", run_id)
    assert proc.returncode == 0 and "their-script" in proc.stdout and "variance_or_mismatch" in proc.stdout
    proc = dlexp_proc("runs")
    assert proc.returncode == 0 and run_id in proc.stdout and "variance_or_mismatch" in proc.stdout


@pytest.mark.parametrize("args, named", [
    (["--metric", "train=train_acc", "--metric", "dev=val_ac", "--metric", "test=test_acc"],
     ["no metric 'val_ac'", "its metrics: test_acc, train_acc, val_acc"]),
    (["--metric", "train:train_acc"], ["--metric takes SPLIT=NAME", "'train:train_acc'"]),
    (["--metric", "validation=val_acc"], ["SPLIT one of train, train_dev, dev, test"]),
    (["--metric", "train=train_acc", "--metric", "dev=val_acc"], ["missing: --metric test=NAME"]),
    ([*METRICS, "--size", "dev=lots"], ["--size dev=lots"]),
    ([*METRICS, "--human", "3"], ["--human"]),
    (["--accuracy"], ["--size and --accuracy go with --metric"]),
    (["--save"], ["--save writes the diagnosis of a run another tool logged"]),
    ([*METRICS[:2], "--metric", "dev=lr_never_logged", "--metric", "test=test_acc"], ["no metric 'lr_never_logged'"]),
])
def test_bad_input_is_one_line(foreign, args, named):
    from typer.testing import CliRunner

    from dlexp.cli import app

    result = CliRunner().invoke(app, ["diagnose", foreign["plain"], *args])  # in-process: quicker
    assert_one_error_line(result.exit_code, "", result.output, *named)


def test_a_run_another_tool_logged_without_metric_names_lists_its_metrics(foreign, dlexp_proc):
    proc = dlexp_proc("diagnose", foreign["plain"])
    assert_one_error_line(proc.returncode, proc.stdout, proc.stderr, "was not logged by dlexp", "--metric train=NAME",
                          "its metrics: test_acc, train_acc, val_acc")
    assert proc.returncode == 3


def test_a_metric_that_is_not_a_rate_is_refused(foreign, dlexp_proc):
    mlflow.set_tracking_uri(foreign["uri"])
    with mlflow.start_run() as run:
        mlflow.log_metrics({"train_acc": 97.0, "val_acc": 89.0, "test_acc": 87.5})  # percentages
    proc = dlexp_proc("diagnose", run.info.run_id, *METRICS, "--accuracy")
    assert_one_error_line(proc.returncode, proc.stdout, proc.stderr, "'train_acc'", "is 97, not a rate in [0, 1]")


def test_diagnosing_a_foreign_run_imports_neither_torch_nor_lightning(foreign, import_probe):
    result = import_probe("diagnose", foreign["plain"], *METRICS, "--accuracy", "--save")
    assert result["code"] in (0, None), result["stderr"]
    assert not {"torch", "pytorch_lightning", "lightning_fabric"} & set(result["loaded"])
