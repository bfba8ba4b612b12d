"""Each finished run's model as an MLflow pyfunc model, read back from a real SQLite store: raw table rows in,
class names or numbers out (the run's own errors reproduced), `dlexp predict`, the Model Registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import invoke_ok as invoke, one_error_line, run_dlexp


pytestmark = pytest.mark.slow

SPLITS = ("train", "train_dev", "dev", "test")


@pytest.fixture(scope="module")
def store(module_runs_dir):
    """A classification table (class names are words, registered as `fruit`), a regression table and a
    synthetic run, each 2 epochs."""
    import mlflow
    from mlflow.tracking import MlflowClient

    root = module_runs_dir.parent
    rng = np.random.default_rng(0)
    weight, colour = rng.normal(1, 0.5, 400).round(2), rng.choice(["red", "green"], 400)
    fruit = pd.DataFrame({"weight": weight, "colour": colour,
                          "kind": np.where(weight + (colour == "red") > 1.2, "apple", "pear")})
    fruit.to_csv(root / "fruit.csv", index=False)
    area, rooms = rng.uniform(30, 150, 400).round(1), rng.integers(1, 6, 400)
    houses = pd.DataFrame({"area": area, "rooms": rooms, "price": 2 * area + 10 * rooms + rng.normal(0, 5, 400)})
    houses.to_csv(root / "houses.csv", index=False)
    epochs = "trainer.max_epochs=2"
    out = invoke("train", "data=table", f"data.path={root / 'fruit.csv'}", "data.target=kind", epochs,
                 "baseline.human_error=0.05", "tracking.register=fruit").output
    invoke("train", "data=table", f"data.path={root / 'houses.csv'}", "data.target=price", epochs,
           "baseline.human_error=5")
    invoke("train", "data.n_train=300", "data.n_train_dev=60", "data.n_dev=60", "data.n_test=60", epochs)
    uri = f"sqlite:///{module_runs_dir}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = [client.get_run(r.info.run_id) for r in client.search_runs(ids, order_by=["attributes.start_time ASC"])]
    return {"client": client, "fruit": runs[0], "houses": runs[1], "synthetic": runs[2], "root": root,
            "frames": {"fruit": fruit, "houses": houses}, "train_output": out}


def load(run):
    import mlflow

    return mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")


def whole_file_error(run, squared: bool) -> float:
    """The run's error over its whole table, from its four splits' errors and sizes (the splits partition it;
    the sizes are the dataset inputs' row counts)."""
    import json

    sizes = {t.value: json.loads(di.dataset.profile)["num_rows"]
             for di in run.inputs.dataset_inputs for t in di.tags if t.key == "mlflow.data.context"}
    m = run.data.metrics
    return sum(m[f"error/{s}"] ** (2 if squared else 1) * sizes[s] for s in SPLITS) / sum(sizes.values())


def test_a_classification_table_model_reads_raw_rows_and_names_classes(store):
    run, frame = store["fruit"], store["frames"]["fruit"]
    model = load(run)
    assert model.metadata.get_input_schema().input_names() == ["weight", "colour"]
    assert model.metadata.saved_input_example_info is not None
    predicted = np.asarray(model.predict(frame[["weight", "colour"]]))
    assert set(predicted) <= {"apple", "pear"}
    assert run.outputs.model_outputs, "the run shows its LoggedModel"


def test_the_model_reproduces_the_runs_own_errors(store, tmp_path):
    for key, squared in (("fruit", False), ("houses", True)):
        run, frame = store[key], store["frames"][key]
        target = frame.columns[-1]
        predicted = np.asarray(load(run).predict(frame.drop(columns=[target])))
        if squared:
            error = float(np.mean((predicted.astype(float) - frame[target].to_numpy()) ** 2))
        else:
            error = float(np.mean(predicted != frame[target].to_numpy()))
        assert error == pytest.approx(whole_file_error(run, squared), rel=1e-3, abs=1e-6), key


def test_a_synthetic_run_model_reads_feature_columns(store):
    model = load(store["synthetic"])
    names = model.metadata.get_input_schema().input_names()
    assert names == [f"x{i}" for i in range(10)]
    got = np.asarray(model.predict(pd.DataFrame(np.zeros((3, 10)), columns=names)))
    assert got.shape == (3,) and set(got.tolist()) <= {0, 1, 2, 3}


def test_dlexp_predict_writes_the_rows_with_their_prediction(store):
    root, rid = store["root"], store["houses"].info.run_id
    pd.DataFrame({"area": [50.0, 120.0], "rooms": [1, 4]}).to_csv(root / "new.csv", index=False)
    result = run_dlexp("predict", rid, str(root / "new.csv"), "-o", str(root / "out.csv"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {root / 'out.csv'}: 2 rows scored by run {rid}'s model"
    out = pd.read_csv(root / "out.csv")
    assert list(out.columns) == ["area", "rooms", "prediction"]
    assert out.prediction[1] > out.prediction[0]  # a bigger house costs more after 2 epochs on a linear price


def test_dlexp_predict_on_feature_columns_prints_only_its_line_and_writes_parquet_when_asked(store):
    root, rid = store["root"], store["synthetic"].info.run_id
    names = [f"x{i}" for i in range(10)]
    pd.DataFrame(np.zeros((3, 10)), columns=names).to_csv(root / "xs.csv", index=False)
    result = run_dlexp("predict", rid, str(root / "xs.csv"), "-o", str(root / "xs_out.parquet"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "dlexp predict printed a warning"
    out = pd.read_parquet(root / "xs_out.parquet")
    assert list(out.columns) == names + ["prediction"] and len(out) == 3


def test_dlexp_predict_bad_input_is_one_line(store):
    root, rid = store["root"], store["fruit"].info.run_id
    (root / "nocolour.csv").write_text("weight,shade\n0.2,green\n")
    (root / "words.csv").write_text("weight,colour\nheavy,green\n")
    one_error_line(run_dlexp("predict", rid, str(root / "nocolour.csv")), "no column 'colour'", code=2)
    one_error_line(run_dlexp("predict", rid, str(root / "words.csv")), "'weight'", "'heavy'", code=2)


def test_the_registry_holds_the_runs_model(store):
    client, rid = store["client"], store["fruit"].info.run_id
    assert "registered the run's model as fruit version 1" in store["train_output"]
    result = invoke("register", rid, "fruit")
    assert f"as fruit version 2 (models:/fruit/2)" in result.output
    versions = client.search_model_versions("name='fruit'")
    assert sorted(int(v.version) for v in versions) == [1, 2] and {v.run_id for v in versions} == {rid}
    import mlflow

    frame = store["frames"]["fruit"][["weight", "colour"]]
    assert list(mlflow.pyfunc.load_model("models:/fruit/2").predict(frame)) == list(load(store["fruit"]).predict(frame))


def test_a_checkpoint_that_is_both_best_and_last_is_kept_once(tmp_path):
    from dlexp.training.run import one_checkpoint_file

    both, apart = tmp_path / "both", tmp_path / "apart"
    for folder in (both, apart):
        folder.mkdir()
        (folder / "best.ckpt").write_bytes(b"best weights")
    (both / "last.ckpt").symlink_to("best.ckpt")
    (apart / "last.ckpt").write_bytes(b"last weights")
    one_checkpoint_file(both)
    one_checkpoint_file(apart)
    assert sorted(p.name for p in both.iterdir()) == ["last.ckpt"] and not (both / "last.ckpt").is_symlink()
    assert (both / "last.ckpt").read_bytes() == b"best weights"
    assert {p.name: p.read_bytes() for p in apart.iterdir()} == {"best.ckpt": b"best weights",
                                                                 "last.ckpt": b"last weights"}
