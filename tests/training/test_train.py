"""Real (tiny) training runs through the CLI, read back from the MLflow store they were logged to."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from typer.testing import CliRunner

from dlexp.cli import app
from dlexp.diagnosis import GAPS, VERDICTS

pytestmark = pytest.mark.slow

SMALL = ["data.n_train=400", "data.n_train_dev=100", "data.n_dev=100", "data.n_test=100", "model.hidden=[16]"]
ERROR_KEYS = ("human", "train", "train_dev", "dev", "test")


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def mlflow_client(runs):
    from mlflow.tracking import MlflowClient

    assert (runs / "mlflow.db").is_file()
    return MlflowClient(tracking_uri=f"sqlite:///{runs}/mlflow.db")


def all_runs(client):
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids, order_by=["attributes.start_time DESC"]))


def artifact_paths(client, run_id, path=None) -> set[str]:
    out = set()
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            out |= artifact_paths(client, run_id, info.path)
        else:
            out.add(info.path)
    return out


def read_artifact(client, run_id, name, tmp_path) -> str:
    return open(client.download_artifacts(run_id, name, str(tmp_path))).read()


@pytest.fixture(scope="module")
def trained(module_runs_dir):
    """One run: 400 synthetic examples, a [16] MLP, two epochs of two steps at a learning rate too small to learn
    (1e-5): its train error stays near chance (0.75), far above the human level (0.05), so the diagnosis always
    finds avoidable bias and prints next commands."""
    result = invoke("train", *SMALL, "trainer.max_epochs=2", "optimizer.lr=1e-5")
    assert result.exit_code == 0, result.output
    client = mlflow_client(module_runs_dir)
    runs = all_runs(client)
    assert len(runs) == 1
    return {"output": result.stdout, "client": client, "run": runs[0], "runs_dir": module_runs_dir}


def test_run_is_finished_with_errors_gaps_and_verdict(trained):
    run = trained["run"]
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    for k in ERROR_KEYS:
        assert 0.0 <= m[f"error/{k}"] <= 1.0, k
    for g in GAPS:
        assert f"gap/{g}" in m
    assert m["gap/avoidable_bias"] == pytest.approx(m["error/train"] - m["error/human"])
    assert m["gap/variance"] == pytest.approx(m["error/train_dev"] - m["error/train"])
    assert m["gap/data_mismatch"] == pytest.approx(m["error/dev"] - m["error/train_dev"])
    assert m["gap/dev_overfitting"] == pytest.approx(m["error/test"] - m["error/dev"])
    # baseline.human_error=auto: the synthetic source's Bayes error, its label noise (default 0.05)
    assert m["error/human"] == pytest.approx(0.05)
    # a clean pass over each split: a whole number of mistakes out of the split's size
    for k, n in (("train", 400), ("train_dev", 100), ("dev", 100), ("test", 100)):
        assert math.isclose(m[f"error/{k}"] * n, round(m[f"error/{k}"] * n), abs_tol=1e-6), k
    tags = run.data.tags
    assert tags["dlexp.verdict"] in VERDICTS
    problems = [p for p in tags.get("dlexp.problems", "").split(",") if p]
    assert all(p in GAPS for p in problems)
    if problems:
        assert tags["dlexp.verdict"] == problems[0]
    import torch

    # where it trained: trainer.accelerator=auto picks the GPU where there is one (tests/gpu checks that)
    assert tags["dlexp.device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")


def test_run_params_are_the_resolved_config(trained):
    p = trained["run"].data.params
    assert p["data.n_train"] == "400"
    assert p["data.name"] == "synthetic"
    assert p["model.name"] == "mlp"
    assert p["model.hidden"] == "[16]"
    assert p["trainer.max_epochs"] == "2"
    assert p["optimizer.name"] == "adam"


def test_per_epoch_metrics_have_one_point_per_epoch(trained):
    client, run_id = trained["client"], trained["run"].info.run_id
    loss = client.get_metric_history(run_id, "epoch/train_loss")
    assert sorted(h.step for h in loss) == [1, 2]
    assert all(math.isfinite(h.value) and h.value > 0 for h in loss)
    dev = client.get_metric_history(run_id, "epoch/dev_error")
    assert sorted(h.step for h in dev) == [1, 2]


def test_artifacts_are_kept_with_the_run(trained, tmp_path):
    client, run_id = trained["client"], trained["run"].info.run_id
    paths = artifact_paths(client, run_id)
    for name in ("diagnosis.json", "config.yaml", "plots/error_staircase.png", "plots/training_curves.png",
                 "checkpoints/last.ckpt"):
        assert name in paths, (name, sorted(paths))
    png = open(client.download_artifacts(run_id, "plots/error_staircase.png", str(tmp_path)), "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    config = yaml.safe_load(read_artifact(client, run_id, "config.yaml", tmp_path))
    assert config["data"]["n_train"] == 400 and config["model"]["hidden"] == [16]


def test_diagnosis_json_matches_the_metrics(trained, tmp_path):
    client, run = trained["client"], trained["run"]
    doc = json.loads(read_artifact(client, run.info.run_id, "diagnosis.json", tmp_path))
    assert {"run_id", "task", "metric", "errors", "sizes", "gaps", "verdict", "problems", "actions"} <= set(doc)
    assert doc["run_id"] == run.info.run_id
    assert doc["sizes"] == {"train": 400, "train_dev": 100, "dev": 100, "test": 100}
    assert doc["verdict"] == run.data.tags["dlexp.verdict"]
    for k in ERROR_KEYS:
        assert doc["errors"][k] == pytest.approx(run.data.metrics[f"error/{k}"])
    for a in doc["actions"]:
        if a["command"]:
            assert a["command"].startswith("dlexp train ")
            assert "data.n_train_dev=100" in a["command"]  # this run's overrides are repeated


def test_train_prints_epochs_verdict_and_next_commands(trained):
    out = trained["output"]
    run = trained["run"]
    assert "epoch 1/2" in out and "epoch 2/2" in out  # plain lines when output is not a terminal
    assert run.info.run_id in out
    assert run.data.tags["dlexp.verdict"] in out
    assert run.data.tags["dlexp.verdict"] == "avoidable_bias"
    assert "$ dlexp train " in out
    assert "Traceback" not in out


def test_no_work_files_are_left_behind(trained):
    work = trained["runs_dir"] / "work"
    assert not work.exists() or not any(work.iterdir())


def test_diagnose_reads_the_latest_run_back(trained):
    run = trained["run"]
    result = invoke("diagnose", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run_id"] == run.info.run_id
    assert doc["verdict"] == run.data.tags["dlexp.verdict"]
    for k in ERROR_KEYS:
        assert doc["errors"][k] == pytest.approx(run.data.metrics[f"error/{k}"])
    assert doc["sizes"] == {"train": 400, "train_dev": 100, "dev": 100, "test": 100}
    # the commands are rebuilt from the stored config and overrides
    commands = [a["command"] for a in doc["actions"] if a["command"]]
    assert commands and all("data.n_train_dev=100" in c for c in commands)


def test_diagnose_with_another_human_level(trained):
    run = trained["run"]
    result = invoke("diagnose", run.info.run_id, "--human", "0.3", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["errors"]["human"] == 0.3
    assert doc["gaps"]["avoidable_bias"] == pytest.approx(run.data.metrics["error/train"] - 0.3)
    assert doc["gaps"]["avoidable_bias"] != pytest.approx(run.data.metrics["gap/avoidable_bias"])
    assert doc["gaps"]["variance"] == pytest.approx(run.data.metrics["gap/variance"])


def test_diagnose_prints_a_table_for_people(trained):
    result = invoke("diagnose")
    assert result.exit_code == 0, result.output
    assert "error/train_dev" in result.stdout and "gap/avoidable_bias" in result.stdout
    assert trained["run"].data.tags["dlexp.verdict"] in result.stdout


def test_runs_json_lists_the_run(trained):
    result = invoke("runs", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 1
    row = rows[0]
    assert {"run_id", "status", "verdict", "errors"} <= set(row)
    assert row["run_id"] == trained["run"].info.run_id
    assert row["status"] == "FINISHED"
    assert row["verdict"] == trained["run"].data.tags["dlexp.verdict"]
    assert set(ERROR_KEYS) - {"human"} <= set(row["errors"])
    assert row["errors"]["dev"] == pytest.approx(trained["run"].data.metrics["error/dev"])


def test_runs_table_shows_the_whole_run(trained):
    result = invoke("runs")
    assert result.exit_code == 0, result.output
    run = trained["run"]
    assert run.info.run_id in result.stdout
    assert "FINISHED" in result.stdout
    assert run.data.tags["dlexp.verdict"] in result.stdout  # the verdict in full, not cut short


# The runs below share one store (creating an MLflow store costs seconds); each test finds its own runs
# by the run name it gives them, and runs in its own empty working directory.


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    return tmp_path_factory.mktemp("shared") / "runs"


@pytest.fixture
def store(runs_dir, shared_store, monkeypatch):
    monkeypatch.setenv("DLEXP_RUNS_DIR", str(shared_store))
    return shared_store


def named_runs(runs, name):
    return [r for r in all_runs(mlflow_client(runs)) if r.info.run_name == name]


def test_multirun_makes_one_run_per_value(store, runs_dir):
    result = invoke("train", "-m", *SMALL, "trainer.max_epochs=1", "optimizer.lr=0.001,0.01",
                    "tracking.run_name=sweep")
    assert result.exit_code == 0, result.output
    runs = named_runs(store, "sweep")
    assert len(runs) == 2
    assert sorted(float(r.data.params["optimizer.lr"]) for r in runs) == [0.001, 0.01]
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.tags["dlexp.verdict"] in VERDICTS
        overrides = json.loads(r.data.tags["dlexp.overrides"])
        assert overrides.count("trainer.max_epochs=1") == 1
        assert f"optimizer.lr={r.data.params['optimizer.lr']}" in overrides  # this job's value, not the sweep
    # the working directory stays clean: Hydra's sweep files, if any, go under the runs folder
    assert list(runs_dir.parent.iterdir()) == []
    # `dlexp runs` lists newest first: the second job of the sweep before the first
    listed = json.loads(invoke("runs", "--json").stdout)
    by_id = {r.info.run_id: r.data.params["optimizer.lr"] for r in runs}
    assert [by_id[row["run_id"]] for row in listed if row["run_id"] in by_id] == ["0.01", "0.001"]
    starts = [row["start_time"] for row in listed]
    assert starts == sorted(starts, reverse=True)
    assert len(json.loads(invoke("runs", "--json", "-n", "1").stdout)) == 1


def test_digits_logistic_run_as_a_subprocess(store, dlexp_proc, tmp_path):
    proc = dlexp_proc("train", "data=digits", "model=logistic", "trainer.max_epochs=1", "tracking.run_name=digits")
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/1" in proc.stdout  # plain lines when piped
    assert "Traceback" not in proc.stderr
    (run,) = named_runs(store, "digits")
    assert run.info.run_id in proc.stdout
    assert run.info.status == "FINISHED"
    assert run.data.params["data.name"] == "digits" and run.data.params["model.name"] == "logistic"
    assert run.data.tags["dlexp.verdict"] in VERDICTS
    # no known Bayes error on real data: the auto baseline is 0
    assert run.data.metrics["error/human"] == 0.0
    client = mlflow_client(store)
    doc = json.loads(read_artifact(client, run.info.run_id, "diagnosis.json", tmp_path))
    assert sum(doc["sizes"].values()) == 1797
    # a logistic regression learns digits in one epoch far better than chance (90%)
    assert run.data.metrics["error/train"] < 0.6


def test_a_run_that_fails_ends_failed(store):
    result = invoke("train", *SMALL, "trainer.max_epochs=1", "trainer.strategy=no_such_strategy",
                    "tracking.run_name=failed")
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr
    assert "dlexp: error:" in result.stderr and "no_such_strategy" in result.stderr
    (run,) = named_runs(store, "failed")
    assert run.info.status == "FAILED"
    assert "no_such_strategy" in run.data.tags.get("dlexp.error", "")
    # and diagnosing it says there is nothing to diagnose, in one line
    diag = invoke("diagnose", run.info.run_id)
    assert diag.exit_code != 0
    lines = diag.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlexp: error:") and run.info.run_id in lines[0]


def test_a_diverging_run_gets_the_verdict_diverged(store, tmp_path):
    result = invoke("train", *SMALL, "trainer.max_epochs=1", "optimizer=sgd", "optimizer.lr=1e30",
                    "tracking.run_name=diverged")
    assert result.exit_code == 4, result.output  # dlexp's exit code for a diverged run
    assert "Traceback" not in result.output
    assert "diverged" in result.stdout
    (run,) = named_runs(store, "diverged")
    assert run.info.status == "FINISHED"
    assert run.data.tags["dlexp.verdict"] == "diverged"
    doc = json.loads(read_artifact(mlflow_client(store), run.info.run_id, "diagnosis.json", tmp_path))
    assert isinstance(doc["diverged_at"], int)
    first = doc["actions"][0]
    assert first["problem"] == "diverged"
    assert "optimizer.lr=1e+29" in first["command"]  # the run's learning rate, divided by ten
    # diagnose reads it back as diverged too
    again = invoke("diagnose", run.info.run_id, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["verdict"] == "diverged"


def test_reweighted_training_logs_how_far_dev_is_from_training(store):
    result = invoke("train", *SMALL, "data.shift=1.5", "data.reweight=0.5", "trainer.max_epochs=1",
                    "tracking.run_name=reweighted")
    assert result.exit_code == 0, result.output
    (run,) = named_runs(store, "reweighted")
    assert float(run.data.params["data.reweight"]) == 0.5
    assert run.data.metrics["data/shift_auc"] > 0.7      # dev moved 1.5 standard deviations: easy to tell apart
    assert 0 < run.data.metrics["data/reweight_ess"] < 1  # uneven weights: fewer effective training rows
    for split in ("train", "train_dev", "dev", "test"):  # each split is still measured as drawn
        assert f"error/{split}" in run.data.metrics


def test_a_reweight_strength_out_of_range_is_one_line(store):
    result = invoke("train", *SMALL, "data.shift=1.5", "data.reweight=2", "tracking.run_name=overweighted")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "data.reweight must be in [0, 1]" in lines[0], result.stderr
    assert not named_runs(store, "overweighted")


def test_synthesised_images_like_dev_close_a_data_mismatch(store, tmp_path):
    """Training shapes drawn sharp and bright; the served ones (dev/test) out of focus and darker. The plain run
    is judged data_mismatch and offered data.synthesize; with a dev-like copy of every training image the dev
    error falls below the plain run's 95% interval."""
    from dlexp.data.examples import write_shapes

    train = write_shapes(tmp_path / "shapes", per_class=60, size=12)
    served = write_shapes(tmp_path / "served", per_class=30, size=12, seed=1, blur=1.5, light=0.5)
    args = ("data=images", f"data.path={train}", f"data.dev_path={served}", "data.image_size=12", "model=cnn",
            "baseline.human_error=0.0", "trainer.max_epochs=12", "seed=1")
    plain = invoke("train", *args, "tracking.run_name=plain-shapes")
    assert plain.exit_code == 0, plain.output
    (first,) = named_runs(store, "plain-shapes")
    again = invoke("diagnose", first.info.run_id, "--json")
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    assert doc["verdict"] == "data_mismatch"
    offered = [a["command"] for a in doc["actions"] if a["problem"] == "data_mismatch" and a["command"]]
    assert any(c.endswith("data.synthesize=0.5") for c in offered), offered
    synth = invoke("train", *args, "data.synthesize=1", "tracking.run_name=synth-shapes")
    assert synth.exit_code == 0, synth.output
    assert "data.synthesize: added 162 training images given the dev images' conditions" in synth.stdout
    (run,) = named_runs(store, "synth-shapes")
    assert run.data.metrics["data/synth_blur"] >= 1.0
    assert run.data.metrics["error/dev"] < doc["intervals"]["dev"][0], (run.data.metrics["error/dev"], doc["errors"])


def dev_curve(store, run):
    return [m.value for m in sorted(mlflow_client(store).get_metric_history(run.info.run_id, "epoch/dev_error"),
                                    key=lambda m: m.step)]


def test_early_stopping_measures_the_weights_of_its_best_epoch(store):
    """patience=1 on 100 noisy dev examples stops within a few epochs, one epoch past its lowest dev error: the
    errors are those of that epoch's weights (as Keras' restore_best_weights), unless restore_best=false."""
    args = (*SMALL, "trainer.max_epochs=60", "optimizer.lr=0.01", "early_stopping.patience=1")
    result = invoke("train", *args, "tracking.run_name=early")
    assert result.exit_code == 0, result.output
    (run,) = named_runs(store, "early")
    curve = dev_curve(store, run)
    assert len(curve) < 60  # it stopped early, so its last epoch is not its best
    best = min(range(len(curve)), key=curve.__getitem__)
    assert run.data.tags["dlexp.best_epoch"] == str(best + 1)
    assert f"measured the weights of epoch {best + 1} (lowest dev error)" in result.stdout
    assert run.data.metrics["error/dev"] == pytest.approx(curve[best], abs=1e-6)
    assert run.data.metrics["error/dev"] < curve[-1]

    kept = invoke("train", *args, "early_stopping.restore_best=false", "tracking.run_name=early-last")
    assert kept.exit_code == 0, kept.output
    (last,) = named_runs(store, "early-last")
    assert "dlexp.best_epoch" not in last.data.tags
    assert last.data.metrics["error/dev"] == pytest.approx(dev_curve(store, last)[-1], abs=1e-6)
