"""Each run's four splits as MLflow dataset inputs, read back from a real SQLite store: contexts, names, digests
(the fingerprints `dlexp compare` pairs runs on), sources and a table's schema."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dlexp.cli import app
from dlexp.diagnosis import SPLITS

pytestmark = pytest.mark.slow

SMALL = ["data.n_train=300", "data.n_train_dev=60", "data.n_dev=60", "data.n_test=60", "trainer.max_epochs=1"]


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def store(module_runs_dir):
    """Two synthetic runs on the same data (two widths), one on another seed's draw, and one on a table."""
    from mlflow.tracking import MlflowClient

    invoke("train", "-m", *SMALL, "model.hidden=[16],[32]")
    invoke("train", *SMALL, "seed=1")
    csv = module_runs_dir.parent / "fruit.csv"
    rng = np.random.default_rng(0)
    rows = ["weight,colour,kind"] + [f"{w:.2f},{c},{'apple' if w + (c == 'red') > 1 else 'pear'}"
                                     for w, c in zip(rng.normal(1, 0.5, 400), rng.choice(["red", "green"], 400))]
    csv.write_text("\n".join(rows) + "\n")
    invoke("train", "data=table", f"data.path={csv}", "data.target=kind", "trainer.max_epochs=1",
           "baseline.human_error=0.05")
    client = MlflowClient(tracking_uri=f"sqlite:///{module_runs_dir}/mlflow.db")
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = [client.get_run(r.info.run_id) for r in client.search_runs(ids, order_by=["attributes.start_time ASC"])]
    return {"runs": runs, "client": client, "csv": csv}


def inputs(run) -> dict:
    """{context: the dataset} of a run's dataset inputs."""
    found = {}
    for di in run.inputs.dataset_inputs:
        contexts = [t.value for t in di.tags if t.key == "mlflow.data.context"]
        assert len(contexts) == 1, di
        found[contexts[0]] = di.dataset
    return found


def test_each_run_logs_its_four_splits_as_dataset_inputs(store):
    for run in store["runs"]:
        got = inputs(run)
        assert sorted(got) == sorted(SPLITS)
        for split, ds in got.items():
            assert ds.name.endswith(f"-{split}") and len(ds.digest) == 36
            assert json.loads(ds.profile)["fingerprint"].startswith(ds.digest)
    small = inputs(store["runs"][0])
    assert small["train"].name == "synthetic-train" and json.loads(small["train"].profile)["num_rows"] == 300
    source = json.loads(small["dev"].source)
    assert small["dev"].source_type == "generator" and source["generator"] == "dlexp.data.synthetic"
    assert source["seed"] == 0 and source["params"]["n_dev"] == 60


def test_the_digest_is_the_fingerprint_compare_pairs_runs_on(store, tmp_path):
    from dlexp.tracking import outcomes

    run = store["runs"][0]
    path = store["client"].download_artifacts(run.info.run_id, f"{outcomes.FOLDER}/{outcomes.FILE}", str(tmp_path))
    kept = outcomes.read(Path(path))
    assert {s: ds.digest for s, ds in inputs(run).items()} == {s: kept.fingerprints[s][:36] for s in SPLITS}


def test_runs_on_the_same_data_share_digests_and_another_seed_differs(store):
    narrow, wide, other_seed, _ = (inputs(r) for r in store["runs"])
    assert {s: d.digest for s, d in narrow.items()} == {s: d.digest for s, d in wide.items()}
    assert all(other_seed[s].digest != narrow[s].digest for s in SPLITS)
    assert json.loads(other_seed["train"].source)["seed"] == 1


def test_a_table_names_its_file_and_its_columns(store):
    table = inputs(store["runs"][3])
    ds = table["train"]
    assert ds.name == "fruit-train" and ds.source_type == "local"
    assert json.loads(ds.source)["uri"] == str(store["csv"].resolve())
    assert json.loads(ds.schema)["mlflow_colspec"] == [
        {"type": "double", "name": "weight", "required": True},
        {"type": "string", "name": "colour", "required": True},
        {"type": "string", "name": "kind", "required": True}]


def test_a_database_source_keeps_its_query_and_masks_the_password():
    from dlexp.tracking.datasets import split_source

    section = {"name": "sql", "url": "postgresql://ana:s3cret@db/shop", "query": "SELECT * FROM a",
               "dev_query": "SELECT * FROM b", "test_query": None}
    kinds = {split: split_source(section, split, 7) for split in SPLITS}
    assert all(kind == "sql" and src["url"] == "postgresql://ana:***@db/shop" and src["seed"] == 7
               for kind, src in kinds.values())
    assert [kinds[s][1]["query"] for s in SPLITS] == ["SELECT * FROM a", "SELECT * FROM a",
                                                      "SELECT * FROM b", "SELECT * FROM b"]
