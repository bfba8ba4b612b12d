"""The `dlexp` command line: through Typer's CliRunner, and as a real process in a temporary directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import one_error_line

from dlexp.cli import app

WHAT_IF = ["diagnose", "--human", "0.01", "--train", "0.08", "--train-dev", "0.09", "--dev", "0.10", "--test", "0.11"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def existing_store(tmp_path_factory):
    """A runs folder holding an MLflow store with no runs in it."""
    runs = tmp_path_factory.mktemp("store") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLEXP_RUNS_DIR", str(runs))
        mp.delenv("DLEXP_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        from dlexp.tracking import client as tracking_client

        tracking_client.client(create=True)
    assert (runs / "mlflow.db").is_file()
    return runs


# ---------------------------------------------------------------------------------------------- help


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "diagnose", "runs", "ui"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["train", "diagnose", "runs", "ui"])
def test_each_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_python_m_dlexp_help(runs_dir, dlexp_proc):
    proc = dlexp_proc("--help")
    assert proc.returncode == 0, proc.stderr
    assert "diagnose" in proc.stdout and "train" in proc.stdout
    assert proc.stderr == ""


def test_console_script_help(runs_dir):
    script = Path(sys.executable).parent / "dlexp"
    assert script.exists(), "the `dlexp` console script is installed next to the interpreter"
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: dlexp" in proc.stdout


# ------------------------------------------------------------------------------------------- what-if


def test_what_if_json():
    result = invoke(*WHAT_IF, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # nothing but the JSON document on stdout
    assert doc["run_id"] is None
    assert doc["errors"] == {"human": 0.01, "train": 0.08, "train_dev": 0.09, "dev": 0.10, "test": 0.11}
    assert doc["gaps"]["avoidable_bias"] == pytest.approx(0.07)
    for gap in ("variance", "data_mismatch", "dev_overfitting"):
        assert doc["gaps"][gap] == pytest.approx(0.01)
    assert doc["verdict"] == "avoidable_bias"
    assert doc["problems"][0] == "avoidable_bias"
    assert set(doc["problems"]) == {"avoidable_bias", "variance", "data_mismatch", "dev_overfitting"}
    assert doc["actions"] and all(a["command"] is None for a in doc["actions"])


def test_what_if_classic_cases_through_the_cli():
    cases = {("0.01", "0.15", "0.155", "0.16", "0.16"): "avoidable_bias",
             ("0.01", "0.015", "0.10", "0.11", "0.11"): "variance",
             ("0.01", "0.011", "0.015", "0.10", "0.10"): "data_mismatch",
             ("0.01", "0.015", "0.02", "0.02", "0.04"): "dev_overfitting",
             ("0.01", "0.015", "0.02", "0.025", "0.03"): "within_tolerance"}
    for (h, tr, td, dv, te), verdict in cases.items():
        result = invoke("diagnose", "--human", h, "--train", tr, "--train-dev", td, "--dev", dv, "--test", te,
                        "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["verdict"] == verdict, (h, tr, td, dv, te)


def test_what_if_tolerance_flag():
    result = invoke(*WHAT_IF, "--tolerance", "0.1", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "within_tolerance" and doc["problems"] == []


def test_what_if_table(runs_dir):
    result = invoke(*WHAT_IF)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "avoidable_bias" in out and "verdict" in out
    assert "7.00%" in out  # the avoidable-bias gap
    assert not runs_dir.exists()  # what-if touches no store


def test_what_if_as_a_process_in_a_fresh_directory(runs_dir, dlexp_proc):
    proc = dlexp_proc(*WHAT_IF, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "avoidable_bias"
    assert list(runs_dir.parent.iterdir()) == []  # no runs/ folder, no files in the working directory


def test_train_cfg_job_shows_the_composed_config(runs_dir, dlexp_proc):
    proc = dlexp_proc("train", "--cfg", "job", "data=digits", "trainer.max_epochs=3")
    assert proc.returncode == 0, proc.stderr
    assert "name: digits" in proc.stdout and "max_epochs: 3" in proc.stdout
    assert not runs_dir.exists()  # nothing trained, nothing logged


def test_train_with_a_user_config_directory(runs_dir, dlexp_proc):
    mine = runs_dir.parent / "myconf" / "model"
    mine.mkdir(parents=True)
    (mine / "tiny.yaml").write_text("defaults:\n  - /schema/model/mlp@_here_\n  - _self_\nhidden: [7, 3]\n")
    proc = dlexp_proc("train", "--config-dir", str(mine.parent), "model=tiny", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    assert "- 7\n  - 3" in proc.stdout
    # the built-in options are still there next to the user's
    proc = dlexp_proc("train", "--config-dir", str(mine.parent), "model=logistic", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    assert "name: logistic" in proc.stdout


# ----------------------------------------------------------------------------------------- bad input

# args, whether a (run-less) store must exist, words the one error line names
BAD_INPUT = {
    "human-out-of-range": (["diagnose", "--human", "1.5", "--train", "0.1", "--train-dev", "0.1", "--dev", "0.1",
                            "--test", "0.1"], False, ["human", "1.5"]),
    "what-if-missing-figure": (["diagnose", "--human", "0.01", "--train", "0.1", "--train-dev", "0.1",
                                "--dev", "0.1"], False, ["--test"]),
    "unknown-option": (["train", "data=nope"], False, ["nope", "synthetic", "digits"]),
    "unknown-key": (["train", "data.foo=1"], False, ["data.foo", "n_train"]),
    "wrong-type": (["train", "trainer.max_epochs=abc"], False, ["trainer.max_epochs", "abc"]),
    "bad-enum": (["train", "model.activation=sigmoid"], False, ["model.activation", "relu"]),
    "unparsable-override": (["train", "model.hidden=[1,"], False, ["model.hidden"]),
    "value-out-of-range": (["train", "trainer.max_epochs=0"], False, ["trainer.max_epochs"]),
    "unknown-run-id": (["diagnose", "nonexistent-run-id"], True, ["nonexistent-run-id"]),
    "empty-store": (["diagnose"], True, ["no runs"]),
    "runs-without-store": (["runs"], False, ["no dlexp runs"]),
    "diagnose-without-store": (["diagnose", "--json"], False, ["no dlexp runs"]),
    "ui-without-store": (["ui"], False, ["no dlexp runs"]),
    "bad-limit": (["runs", "--limit", "0"], False, ["--limit"]),
    "human-nan": (["diagnose", "--human", "nan"], False, ["human"]),
    "negative-tolerance": (["diagnose", *WHAT_IF[1:], "--tolerance", "-0.5"], False, ["--tolerance"]),
    "what-if-with-run-id": (["diagnose", "some-run", *WHAT_IF[1:]], False, ["what-if"]),
    "bad-port": (["ui", "--port", "70000"], False, ["--port"]),
    "bad-model-name": (["register", "some-run", "a/b"], False, ["'a/b'", "'/'"]),
    "bad-register-name": (["train", "tracking.register=a:b"], False, ["tracking.register", "'a:b'"]),
}


@pytest.mark.parametrize("args, needs_store, named", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_in_process(request, monkeypatch, runs_dir, args, needs_store, named):
    if needs_store:
        monkeypatch.setenv("DLEXP_RUNS_DIR", str(request.getfixturevalue("existing_store")))
    result = invoke(*args)
    one_error_line(result, *named)
    assert not runs_dir.exists()  # a mistake creates no store


# as real processes too (each costs a Python start-up): the cases a user meets most
AS_A_PROCESS = ("human-out-of-range", "unknown-option", "unknown-key", "wrong-type", "value-out-of-range",
                "unknown-run-id", "runs-without-store")


@pytest.mark.parametrize("args, needs_store, named", [BAD_INPUT[k] for k in AS_A_PROCESS], ids=AS_A_PROCESS)
def test_bad_input_as_a_process(request, monkeypatch, runs_dir, dlexp_proc, args, needs_store, named):
    if needs_store:
        monkeypatch.setenv("DLEXP_RUNS_DIR", str(request.getfixturevalue("existing_store")))
    proc = dlexp_proc(*args)
    one_error_line(proc, *named)
    assert list(runs_dir.parent.iterdir()) == []  # nothing written in the working directory


def test_debug_shows_the_traceback(runs_dir, dlexp_proc, monkeypatch):
    monkeypatch.setenv("DLEXP_DEBUG", "1")
    proc = dlexp_proc("diagnose", "--human", "1.5", "--train", "0.1", "--train-dev", "0.1", "--dev", "0.1",
                      "--test", "0.1")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


# --------------------------------------------------------------------------------- what gets imported

def test_help_imports_no_heavy_library(runs_dir, import_probe):
    result = import_probe("--help")
    assert result["code"] in (0, None)
    assert result["loaded"] == []


@pytest.mark.slow
def test_training_process_leaves_mlflow_to_the_tracking_process(runs_dir, import_probe):
    """A run that overfits (variance: the diagnosis then looks for runs to start from) trains with torch and
    Lightning, while MLflow loads only in its tracking process."""
    result = import_probe("train", "data.n_train=64", "data.n_train_dev=200", "data.n_dev=200", "data.n_test=200",
                          "model.hidden=[128,128]", "trainer.max_epochs=40", "data.batch_size=32")
    assert result["code"] in (0, None), result["stderr"][-2000:]
    assert "variance" in result["stdout"], result["stdout"]
    assert {"torch", "pytorch_lightning"} <= set(result["loaded"]) and "mlflow" not in result["loaded"]
    # a curve's parent names and tags its points through their own runs' start, not through MLflow afterwards
    result = import_probe("curve", "--points", "2", "data.n_train=200", "model.hidden=[8]", "trainer.max_epochs=1")
    assert result["code"] in (0, None), result["stderr"][-2000:]
    assert "torch" in result["loaded"] and "mlflow" not in result["loaded"]


def test_what_if_diagnose_imports_neither_torch_nor_lightning(runs_dir, import_probe):
    result = import_probe(*WHAT_IF)
    assert result["code"] in (0, None)
    assert "torch" not in result["loaded"] and "pytorch_lightning" not in result["loaded"]
    assert result["loaded"] == []  # nor MLflow, scikit-learn or matplotlib
    result = import_probe(*WHAT_IF, "--json")
    assert result["code"] in (0, None) and result["loaded"] == []
