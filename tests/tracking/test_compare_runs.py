"""`dlexp compare` on real (tiny) runs read back from the MLflow store: outcomes artifact, pairing, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import one_error_line

from dlexp.cli import app
from dlexp.diagnosis import GAPS, SPLITS

pytestmark = pytest.mark.slow

SMALL = ["data.n_train=400", "data.n_train_dev=100", "data.n_dev=100", "data.n_test=100", "trainer.max_epochs=1"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def store(module_runs_dir):
    """Two classification runs on the same examples (a small and a larger model), and a regression run."""
    from mlflow.tracking import MlflowClient

    result = invoke("train", "-m", *SMALL, "model.hidden=[16],[64]")
    assert result.exit_code == 0, result.output
    csv = module_runs_dir.parent / "houses.csv"
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(700, 3))
    rows = ["a,b,c,price"] + [f"{a:.4f},{b:.4f},{c:.4f},{100 + 10 * a - 5 * b + rng.normal():.4f}"
                              for a, b, c in x]
    csv.write_text("\n".join(rows) + "\n")
    result = invoke("train", "data=table", f"data.path={csv}", "data.target=price", "trainer.max_epochs=1",
                    "baseline.human_error=0.5")
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=f"sqlite:///{module_runs_dir}/mlflow.db")
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, order_by=["attributes.start_time ASC"])
    small, large, regression = (r.info.run_id for r in runs)
    return {"small": small, "large": large, "regression": regression, "client": client, "runs": module_runs_dir}


def compare_json(*ids: str) -> dict:
    result = invoke("compare", *ids, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_each_run_keeps_its_outcomes_as_one_small_artifact(store, tmp_path):
    from dlexp.tracking import outcomes

    c = store["client"]
    for key, task in (("small", "classification"), ("regression", "regression")):
        path = Path(c.download_artifacts(store[key], f"{outcomes.FOLDER}/{outcomes.FILE}", str(tmp_path / key)))
        assert path.stat().st_size < 20_000
        got = outcomes.read(path)
        assert got.task == task and set(got.values) == set(SPLITS)
        assert all(len(got.fingerprints[s]) == 64 for s in SPLITS)


def test_two_runs_on_the_same_examples_are_compared_paired(store):
    doc = compare_json(store["small"], store["large"])
    assert (doc["a"], doc["b"]) == (store["small"], store["large"])
    run_a, run_b = (store["client"].get_run(store[k]).data.metrics for k in ("small", "large"))
    for split, s in doc["splits"].items():
        assert s["method"] == "paired" and s["test"] == "mcnemar_exact"
        assert s["a"] == pytest.approx(run_a[f"error/{split}"]) and s["b"] == pytest.approx(run_b[f"error/{split}"])
        assert s["diff"] == pytest.approx(s["b"] - s["a"])
        assert s["interval"][0] <= s["diff"] <= s["interval"][1] and 0 <= s["p_value"] <= 1
    for gap in GAPS:
        g = doc["gaps"][gap]
        assert g["a"] == pytest.approx(run_a[f"gap/{gap}"]) and g["b"] == pytest.approx(run_b[f"gap/{gap}"])
        assert g["diff"] == pytest.approx(g["b"] - g["a"], abs=1e-9)
    assert doc["verdicts"]["a"] and doc["verdicts"]["b"] and doc["summary"].startswith("B ")


def test_the_table_names_runs_methods_and_the_summary(store):
    result = invoke("compare", store["small"], store["large"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert store["small"] in text and store["large"] in text
    assert "McNemar exact" in text and "gap/variance" in text and "verdict: A " in text


def test_a_run_compared_with_itself_shows_no_difference(store):
    doc = compare_json(store["small"], store["small"])
    for s in doc["splits"].values():
        assert s["diff"] == 0 and s["p_value"] == 1 and not s["significant"]
    assert {g["change"] for g in doc["gaps"].values()} == {"unchanged"}
    doc = compare_json(store["regression"], store["regression"])
    assert {s["method"] for s in doc["splits"].values()} == {"paired"}
    assert all(s["interval"] == [0, 0] for s in doc["splits"].values())


def test_a_run_without_outcomes_is_compared_with_independent_intervals(store):
    # a run logged before dlexp kept outcomes: its artifact folder has none
    artifacts = store["client"].get_run(store["large"]).info.artifact_uri.removeprefix("file://")
    folder = Path(artifacts) / "outcomes"
    kept = folder.with_name("outcomes.kept")
    shutil.move(folder, kept)
    try:
        doc = compare_json(store["small"], store["large"])
    finally:
        shutil.move(kept, folder)
    assert {s["method"] for s in doc["splits"].values()} == {"independent"}
    assert "no per-example outcomes kept for run B" in doc["splits"]["dev"]["reason"]
    assert doc["splits"]["dev"]["test"] == "two_proportion_z"


def test_a_damaged_outcomes_file_is_refused_in_one_line(store):
    artifacts = store["client"].get_run(store["large"]).info.artifact_uri.removeprefix("file://")
    path = Path(artifacts) / "outcomes" / "outcomes.npz"
    kept = path.read_bytes()
    path.write_bytes(b"not a zip file")
    try:
        result = invoke("compare", store["small"], store["large"])
    finally:
        path.write_bytes(kept)
    one_error_line(result, store["large"], "outcomes/outcomes.npz", "delete that artifact")


def test_runs_of_different_tasks_are_refused(store):
    one_error_line(invoke("compare", store["small"], store["regression"]), "cannot be compared", "regression")


def test_an_unknown_run_is_refused(store):
    one_error_line(invoke("compare", store["small"], "0123456789abcdef"), "0123456789abcdef", "dlexp runs")


def test_compare_b_alone_uses_the_run_it_follows(store):
    one_error_line(invoke("compare", store["large"]), "follows no run", "dlexp compare A")
    store["client"].set_tag(store["large"], "dlexp.follows", store["small"])
    try:
        doc = compare_json(store["large"])
    finally:
        store["client"].delete_tag(store["large"], "dlexp.follows")
    assert (doc["a"], doc["b"]) == (store["small"], store["large"])


def test_compare_as_a_process_imports_neither_torch_nor_lightning(store, import_probe):
    result = import_probe("compare", store["small"], store["large"])
    assert result["code"] == 0, result["stderr"]
    assert not {"torch", "pytorch_lightning", "lightning_fabric"} & set(result["loaded"])
    assert "dlexp compare · B " in result["stdout"]


def test_compare_has_help():
    result = invoke("compare", "--help")
    assert result.exit_code == 0 and "Did run B help?" in result.output
