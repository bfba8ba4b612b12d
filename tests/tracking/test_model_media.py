"""A text run's and an image run's MLflow pyfunc model, read back from a real SQLite store: raw texts (the run's
tokenizer inside) or image paths (its resize and channel statistics inside) in, the user's class names out, the
same mistakes as the run's own on its dev files; `dlexp predict` on them, its progress bar and its bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import invoke_ok as invoke, one_error_line, run_dlexp

from dlexp.data.examples import SHAPES, TOPICS, write_reviews, write_shapes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(module_runs_dir):
    """A text run (train, dev and test files of reviews) and an image run (train, dev and test folders of
    shapes), 2 epochs each; the working directory is `root`, so relative image paths are read from it."""
    import mlflow
    from mlflow.tracking import MlflowClient

    root = module_runs_dir.parent
    reviews = pd.read_csv(write_reviews(root / "reviews", labelled=300, unlabelled=10)["labelled"])
    for name, part in (("train", reviews[:200]), ("dev", reviews[200:250]), ("test", reviews[250:])):
        part.to_csv(root / f"{name}.csv", index=False)
    write_shapes(root / "shapes" / "train", per_class=12, size=16)
    write_shapes(root / "shapes" / "dev", per_class=5, size=20, seed=1)
    write_shapes(root / "shapes" / "test", per_class=5, size=20, seed=2)
    epochs = "trainer.max_epochs=2"
    invoke("train", "data=text", "data.path=train.csv", "data.dev_path=dev.csv", "data.test_path=test.csv",
           "data.max_length=24", "data.vocab_size=300", "model=gru", epochs, "baseline.human_error=0.05")
    invoke("train", "data=images", "data.path=shapes/train", "data.dev_path=shapes/dev",
           "data.test_path=shapes/test", "data.image_size=12", "model=cnn", epochs, "baseline.human_error=0")
    uri = f"sqlite:///{module_runs_dir}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    text, images = client.search_runs(ids, order_by=["attributes.start_time ASC"])
    dev_images = [str(f.relative_to(root)) for c in sorted((root / "shapes" / "dev").iterdir())
                  for f in sorted(c.glob("*.png"))]  # in the order the run read its dev folder
    return {"client": client, "root": root, "text": text, "images": images,
            "dev_text": reviews[200:250].reset_index(drop=True), "dev_images": dev_images}


def load(run):
    import mlflow

    return mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")


def runs_own_dev_mistakes(client, run) -> np.ndarray:
    """Which dev examples the run itself got wrong (its outcomes artifact, from its eval pass)."""
    from dlexp.tracking import outcomes

    return outcomes.read(client.download_artifacts(run.info.run_id, "outcomes/outcomes.npz")).values["dev"]


def test_a_text_run_model_reads_raw_texts_and_makes_the_runs_own_mistakes(store):
    run, dev = store["text"], store["dev_text"]
    model = load(run)
    assert model.metadata.get_input_schema().input_names() == ["text"]
    assert model.metadata.saved_input_example_info is not None and run.outputs.model_outputs
    predicted = np.asarray(model.predict(dev))  # the label column is left aside
    assert set(predicted) <= set(TOPICS)
    wrong = predicted != dev["label"].to_numpy()
    assert np.array_equal(wrong, runs_own_dev_mistakes(store["client"], run))
    assert wrong.mean() == pytest.approx(run.data.metrics["error/dev"])
    texts = dev["text"][:4].tolist()
    assert list(model.predict({"text": texts})) == list(model.predict(pd.DataFrame({"text": texts}))) \
        == list(predicted[:4])


def test_an_image_run_model_reads_image_paths_and_makes_the_runs_own_mistakes(store):
    run, paths = store["images"], store["dev_images"]
    model = load(run)
    assert model.metadata.get_input_schema().input_names() == ["path"]
    predicted = np.asarray(model.predict(pd.DataFrame({"path": paths})))
    assert set(predicted) <= set(SHAPES)
    wrong = predicted != np.array([p.split("/")[2] for p in paths])
    assert np.array_equal(wrong, runs_own_dev_mistakes(store["client"], run))


def test_dlexp_predict_scores_a_csv_of_texts_and_one_of_image_paths(store):
    root = store["root"]
    store["dev_text"].to_csv(root / "new_texts.csv", index=False)
    pd.DataFrame({"path": store["dev_images"]}).to_csv(root / "new_images.csv", index=False)
    for key, rows, column in (("text", "new_texts.csv", "text"), ("images", "new_images.csv", "path")):
        rid = store[key].info.run_id
        result = run_dlexp("predict", rid, str(root / rows), "-o", str(root / f"out_{key}.csv"), cwd=root)
        assert result.returncode == 0 and not result.stderr.strip(), result.stderr
        out = pd.read_csv(root / f"out_{key}.csv")
        assert list(out["prediction"]) == list(load(store[key]).predict(out[[column]])), key


def test_a_long_file_shows_a_progress_bar_on_a_terminal_only(store, monkeypatch):
    root, rid = store["root"], store["images"].info.run_id
    pd.DataFrame({"path": store["dev_images"] * 20}).to_csv(root / "many.csv", index=False)  # 300 rows: 2 steps
    quiet = run_dlexp("predict", rid, str(root / "many.csv"), "-o", str(root / "quiet.csv"), cwd=root)
    assert quiet.returncode == 0 and quiet.stderr.strip() == "", quiet.stderr
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich takes stderr for a terminal
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    shown = run_dlexp("predict", rid, str(root / "many.csv"), "-o", str(root / "shown.csv"), cwd=root)
    assert shown.returncode == 0 and "scoring" in shown.stderr and "300" in shown.stderr, shown.stderr
    assert pd.read_csv(root / "shown.csv").equals(pd.read_csv(root / "quiet.csv"))


def test_dlexp_predict_bad_texts_and_images_are_one_line(store):
    root = store["root"]
    text, images = store["text"].info.run_id, store["images"].info.run_id
    (root / "notext.csv").write_text("review\nthe kifo was nede\n")
    (root / "nofile.csv").write_text(f"path\n{store['dev_images'][0]}\nshapes/dev/circle/missing.png\n")
    (root / "shapes" / "broken.png").write_text("not an image")
    (root / "broken.csv").write_text("path\nshapes/broken.png\n")
    one_error_line(run_dlexp("predict", text, str(root / "notext.csv"), cwd=root), "no column 'text'", code=2)
    one_error_line(run_dlexp("predict", images, str(root / "nofile.csv"), cwd=root),
                   "row 2", "shapes/dev/circle/missing.png", code=2)
    one_error_line(run_dlexp("predict", images, str(root / "broken.csv"), cwd=root),
                   "cannot read image shapes/broken.png", code=2)


def test_an_npz_of_image_arrays_finishes_and_logs_no_model(tmp_path, monkeypatch):
    """Image arrays in an npz have channel statistics like an image folder, but no file path a model could
    read: the run finishes and keeps no pyfunc model (it failed with a KeyError at its end)."""
    from mlflow.tracking import MlflowClient

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "images.npz", X=rng.normal(size=(120, 3, 8, 8)).astype("float32"),
             y=rng.integers(0, 3, 120))
    monkeypatch.setenv("DLEXP_RUNS_DIR", str(tmp_path / "runs"))
    invoke("train", "data=npz", f"data.path={tmp_path / 'images.npz'}", "model=cnn", "trainer.max_epochs=1",
           "baseline.human_error=none")
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs'}/mlflow.db")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED"
    assert "model" not in {a.path for a in client.list_artifacts(run.info.run_id)}
