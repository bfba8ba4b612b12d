"""Wrong labels: a table with labels flipped at known rows is found out, a clean one is not, and the label
step's command trains without the flagged rows. Real training (1 epoch), real MLflow store, real Hydra."""

from __future__ import annotations

import csv
import shlex

import numpy as np
import pytest

from dlexp.diagnosis.labels import lines
from dlexp.training.launch import run_hydra

pytestmark = pytest.mark.slow
COLS = ["a", "b", "c", "d"]


def write_table(path, n: int, *, flips: float, seed: int) -> np.ndarray:
    """Three well-separated classes in 4 features; labels flipped to another class at rate `flips`.
    Returns the flipped rows, 1-based, as the CSV counts data rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)) + 4.0 * np.eye(3, 4)[y]
    flipped = rng.random(n) < flips
    y[flipped] = (y[flipped] + rng.integers(1, 3, flipped.sum())) % 3
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLS + ["label"])
        out.writerows([*map(lambda v: round(float(v), 4), row), f"k{c}"] for row, c in zip(x, y))
    return np.flatnonzero(flipped) + 1


def train(*args: str):
    (report,) = run_hydra(["data=table", "data.target=label", "trainer.max_epochs=1", "baseline.human_error=0.01",
                           "data.min_split_rows=10", *args])
    return report


def flagged_csv(report) -> list[dict]:
    from mlflow import MlflowClient

    from dlexp.tracking.store import store_uri

    path = MlflowClient(store_uri(None)).download_artifacts(report.run_id, "analysis/label_issues.csv")
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def noisy(module_runs_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    flipped = write_table(folder / "train.csv", 1500, flips=0.1, seed=0)
    write_table(folder / "dev.csv", 400, flips=0.0, seed=1)
    args = (f"data.path={folder / 'train.csv'}", f"data.dev_path={folder / 'dev.csv'}")
    return train(*args), flipped, args


def test_flipped_training_labels_are_found_and_counted(noisy):
    report, flipped, _ = noisy
    rows = flagged_csv(report)
    assert list(rows[0]) == ["split", "row", "given", "suggested", "confidence"]
    train_rows = [r for r in rows if r["split"] == "train"]
    confidence = [float(r["confidence"]) for r in train_rows]
    assert confidence == sorted(confidence, reverse=True)  # worst first
    found = np.isin([int(r["row"]) for r in train_rows], flipped)
    doc = report.document()["label_issues"]
    n_train = report.sizes["train"]
    assert found.mean() >= 0.8, "precision of the flagged training rows"
    train_flipped = len(set(flipped) & set(int(r["row"]) for r in train_rows)) / (0.1 * n_train)
    assert train_flipped >= 0.8, "recall (against the expected number of flips in the training split)"
    lo, hi = doc["train"]["interval"]
    assert lo <= 0.1 <= hi and doc["train"]["count"] == len(train_rows)
    assert doc["dev"]["rate"] <= 0.04  # the dev file is clean


def test_the_label_step_comes_first_and_its_command_trains_without_the_flagged_rows(noisy):
    report, _, args = noisy
    step = report.actions[0]
    assert step.problem == "labels" and f"data.exclude_rows={report.run_id}" in step.command
    command = shlex.split(step.command)
    assert command[:2] == ["dlexp", "train"] and all(a in command for a in args)
    cleaned = train(*command[2:])
    dropped = report.document()["label_issues"]["train"]["count"]
    assert cleaned.sizes["train"] == report.sizes["train"] - dropped
    assert any(f"left out {dropped} training rows" in c for c in cleaned.checks)
    assert cleaned.diagnosis.errors.train < report.diagnosis.errors.train
    assert cleaned.sizes["dev"] == report.sizes["dev"]  # dev and test are the same examples


def test_a_second_label_step_leaves_out_the_first_ones_rows_too(noisy, tmp_path):
    """A run trained without some rows flags only among the rows it kept; excluding ITS rows (a second label
    step, data.exclude_rows=B) must not bring the first exclusion's rows back."""
    from dlexp.data.exclude import read
    from dlexp.tracking.flagged import resolve
    from dlexp.tracking.store import store_uri

    report, _, args = noisy
    flagged = sorted(int(r["row"]) for r in flagged_csv(report) if r["split"] == "train")
    half = tmp_path / "half.txt"  # the first step leaves out half of what run A flagged
    half.write_text("".join(f"{r}\n" for r in flagged[::2]))
    cleaned = train(*args, f"data.exclude_rows={half}")
    second = {int(r["row"]) for r in flagged_csv(cleaned) if r["split"] == "train"}
    assert second and not set(flagged[::2]) & second  # B flags rows it kept, none of those it left out
    both = read(resolve(store_uri(None), cleaned.run_id, tmp_path / "rows"))
    assert both == set(flagged[::2]) | second
    again = train(*args, f"data.exclude_rows={cleaned.run_id}")
    assert again.sizes["train"] == report.sizes["train"] - len(both)  # every flagged row is a training row


def test_a_run_whose_own_exclusion_file_is_gone_is_one_line_naming_both(noisy, tmp_path):
    """data.exclude_rows=B, where B was trained without the rows of a file since deleted: one line naming B and
    the file, exit 2; the run it started ends FAILED, the runs before it stay as they were."""
    from conftest import one_error_line, run_dlexp

    from dlexp.tracking.runs import list_runs

    report, _, args = noisy
    gone = tmp_path / "gone.txt"
    gone.write_text("5\n9\n")
    b = train(*args, f"data.exclude_rows={gone}")
    gone.unlink()
    before = len(list_runs(None, limit=500))
    result = run_dlexp("train", "data=table", "data.target=label", "trainer.max_epochs=1", "data.min_split_rows=10", *args,
                       f"data.exclude_rows={b.run_id}")
    line = one_error_line(result, b.run_id, str(gone), code=2)
    assert "file of the row numbers" in line
    runs = list_runs(None, limit=500)
    assert len(runs) == before + 1 and runs[0]["status"] == "FAILED", runs[0]
    assert {r["run_id"]: r["status"] for r in runs[1:]}[b.run_id] == "FINISHED"


def test_dlexp_recipe_takes_the_label_step_first(noisy, dlexp_proc):
    """`dlexp recipe --from` a run with wrong labels: its first candidate trains without the flagged rows."""
    import json

    report, _, _ = noisy
    proc = dlexp_proc("recipe", "--from", report.run_id, "--budget", "2", "--candidates", "1", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    first = json.loads(proc.stdout)["trail"][0]
    assert first["problem"] == "labels" and first["round"] == 1, first
    assert first["overrides"] == [f"data.exclude_rows={report.run_id}"], first


def test_a_clean_table_has_few_wrong_labels_and_no_label_step(module_runs_dir, tmp_path):
    write_table(tmp_path / "clean.csv", 1200, flips=0.0, seed=2)
    report = train(f"data.path={tmp_path / 'clean.csv'}")
    doc = report.document()["label_issues"]
    assert doc["train"]["rate"] <= 0.02 and doc["train"]["interval"][0] < 0.01
    assert all(a.problem != "labels" for a in report.actions)


def test_excluding_the_rows_of_an_unknown_run_is_one_line_exit_2(runs_dir, dlexp_proc):
    proc = dlexp_proc("train", "data=digits", "trainer.max_epochs=1", "data.exclude_rows=no-such-run")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "data.exclude_rows=no-such-run" in proc.stderr and "Traceback" not in proc.stderr


def test_dlexp_diagnose_and_next_read_the_label_step_back_from_the_store(noisy, dlexp_proc):
    import json

    report, _, _ = noisy
    proc = dlexp_proc("diagnose", report.run_id, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["label_issues"] == json.loads(json.dumps(report.document()["label_issues"]))
    assert doc["actions"][0]["problem"] == "labels"
    assert f"data.exclude_rows={report.run_id}" in doc["actions"][0]["command"]


def write_regression_table(path, n: int, *, outliers: float, seed: int) -> np.ndarray:
    """A target linear in 4 features plus a little noise; at rate `outliers` the target moved by 4-8 of its
    standard deviations, up or down. Returns those rows, 1-based."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = x @ np.array([1.5, -2.0, 1.0, 0.5]) + rng.normal(0.0, 0.3, n)
    moved = rng.random(n) < outliers
    y[moved] += rng.choice([-1.0, 1.0], moved.sum()) * rng.uniform(4, 8, moved.sum()) * y.std()
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLS + ["label"])
        out.writerows([*map(lambda v: round(float(v), 4), row), round(float(t), 4)] for row, t in zip(x, y))
    return np.flatnonzero(moved) + 1


def test_regression_outliers_at_known_rows_are_flagged_as_outliers(module_runs_dir, tmp_path):
    moved = write_regression_table(tmp_path / "train.csv", 1200, outliers=0.03, seed=3)
    write_regression_table(tmp_path / "dev.csv", 300, outliers=0.0, seed=4)
    write_regression_table(tmp_path / "test.csv", 300, outliers=0.0, seed=5)
    report = train(f"data.path={tmp_path / 'train.csv'}", f"data.dev_path={tmp_path / 'dev.csv'}",
                   f"data.test_path={tmp_path / 'test.csv'}", "data.task=regression", "trainer.max_epochs=3")
    rows = flagged_csv(report)
    ours = [r for r in rows if r["split"] in ("train", "train_dev")]  # every row of train.csv is in one of them
    assert ours and all(r["suggested"] == "" for r in rows)
    with open(tmp_path / "train.csv") as f:
        targets = [row["label"] for row in csv.DictReader(f)]
    assert all(float(r["given"]) == float(targets[int(r["row"]) - 1]) for r in ours), "given: the file's target"
    found = np.isin([int(r["row"]) for r in ours], moved)
    assert found.mean() >= 0.9, "precision of the flagged rows (measured: 1.0)"
    assert found.sum() / len(moved) >= 0.9, "recall (measured: 1.0)"
    doc = report.document()["label_issues"]
    assert doc["train"]["kind"] == "outliers" and doc["train"]["threshold"] == 3.5
    assert "ridge" in doc["train"]["method"] and doc["dev"]["method"] == "the network"
    lo, hi = doc["train"]["interval"]
    assert lo <= 0.03 <= hi
    assert all(a.problem != "labels" for a in report.actions)  # outliers take no step
    text = "\n".join(lines(doc))
    assert "training targets are outliers" in text and "look wrong" not in text


def test_a_clean_regression_table_flags_few_outliers(module_runs_dir, tmp_path):
    write_regression_table(tmp_path / "clean.csv", 1200, outliers=0.0, seed=6)
    report = train(f"data.path={tmp_path / 'clean.csv'}", "data.task=regression")
    doc = report.document()["label_issues"]
    assert doc["train"]["kind"] == "outliers" and doc["train"]["rate"] <= 0.01


def test_text_is_searched_through_the_networks_features_and_rows_name_the_files_rows(module_runs_dir, tmp_path):
    import pandas as pd

    from dlexp.data.examples import write_reviews

    files = write_reviews(tmp_path, labelled=400, unlabelled=10, label_noise=0.1)
    (report,) = run_hydra(["data=text", "model=gru", f"data.path={files['labelled']}", "data.max_length=24",
                           "trainer.max_epochs=2", "baseline.human_error=0.05", "diagnosis.label_issues=true"])
    doc = report.document()["label_issues"]
    assert doc["train"]["method"] == "5-fold logistic regression on the network's features"
    assert doc["dev"]["method"] == "the network" and 0 <= doc["train"]["rate"] <= 1
    labels = pd.read_csv(files["labelled"])["label"]
    rows = flagged_csv(report)
    assert rows and all(labels[int(r["row"]) - 1] == r["given"] for r in rows)  # the file's own label, by its row
    assert all(r["suggested"] in set(labels) and r["suggested"] != r["given"] for r in rows)


def test_the_networks_features_are_what_its_last_linear_layer_reads():
    import torch

    from dlexp.training.features import in_memory

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x, y = np.random.default_rng(0).normal(size=(700, 4)).astype(np.float32), np.arange(700) % 3
    feats, labels, inputs = in_memory(net, x, y)
    with torch.no_grad():
        expected = torch.relu(net[0](torch.from_numpy(x))).numpy()
    assert feats.shape == (700, 8) and np.allclose(feats, expected, atol=1e-6)
    assert np.array_equal(labels, y) and inputs is None and net.training  # its mode is given back
