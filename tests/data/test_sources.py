"""Data sources (table, sql, npz, sequence), model families (cnn, gru, transformer), regression, bad input.

Fast: sources and models are tested directly; a few tiny end-to-end runs go through the CLI.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from dlexp import config as configs
from dlexp.data import load, save_preprocessing
from dlexp.errors import ConfigError, DataError

configs.register()


def compose_cfg(*overrides):
    with initialize_config_module("dlexp.configs", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def houses(n=400, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"sqft": rng.normal(1500, 400, n).round(), "rooms": rng.integers(1, 6, n),
                       "city": rng.choice(["paris", "lyon", "nice"], n)})
    df["price"] = (df.sqft * 200 + df.rooms * 5000 + df.city.map({"paris": 80000, "lyon": 30000, "nice": 50000})
                   + rng.normal(0, 20000, n)).round()
    df["label"] = np.where(df.price > df.price.median(), "high", "low")
    return df


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "houses.csv"
    houses().to_csv(path, index=False)
    return path


def table(path, *extra):
    cfg = compose_cfg("data=table", f"data.path={path}", *extra)
    configs.check(cfg)
    return load(cfg.data, seed=0)


# ------------------------------------------------------------------------------------------ tables


def test_table_classification_csv(csv):
    s = table(csv, "data.target=label", "data.features=[sqft,rooms,city]")
    assert s.task == "classification" and s.metric == "error_rate" and s.n_classes == 2
    assert sum(s.sizes().values()) == 400 and s.sizes()["test"] == 60 and s.sizes()["dev"] == 60
    assert s.train.x.shape[1] == 2 + 3  # two standardized numbers, three one-hot cities
    assert abs(s.train.x[:, 0].mean()) < 1e-5 and abs(s.train.x[:, 0].std() - 1) < 1e-3  # fitted on train
    assert abs(np.mean(s.train.y) - np.mean(s.test.y)) < 0.1  # stratified
    assert s.needs_human == "data=table"
    assert s.description["categorical"]["city"] == ["lyon", "nice", "paris"]


def test_table_regression_parquet_auto_task_and_preprocessing_saved(tmp_path):
    path = tmp_path / "houses.parquet"
    houses().to_parquet(path)
    s = table(path, "data.target=price", "data.features=[sqft,rooms,city]", "data.metric=mae")
    assert s.task == "regression" and s.metric == "mae" and s.n_classes == 1
    assert s.train.y.dtype == np.float32 and s.target_std > 10000
    files = save_preprocessing(s, tmp_path / "pre")
    assert {f.name for f in files} == {"preprocessing.joblib", "preprocessing.json"}
    import joblib

    pre = joblib.load(tmp_path / "pre" / "preprocessing.joblib")
    row = pd.DataFrame({"sqft": [1500.0], "rooms": [3.0], "city": ["paris"]})
    assert pre["transform"].transform(row).shape == (1, 5)


def test_table_dev_path_target_fraction_and_checks(tmp_path):
    train, dev = houses(300, seed=1), houses(200, seed=2)
    dev.loc[:9, "label"] = "mid"                          # a class that training never sees
    dev.loc[10:14, ["sqft", "rooms", "city"]] = train.loc[:4, ["sqft", "rooms", "city"]].to_numpy()  # leakage
    train.to_csv(tmp_path / "a.csv", index=False)
    dev.to_csv(tmp_path / "b.csv", index=False)
    s = table(tmp_path / "a.csv", "data.target=label", "data.features=[sqft,rooms,city]",
              f"data.dev_path={tmp_path / 'b.csv'}")
    assert s.sizes()["train"] + s.sizes()["train_dev"] == 300 and s.sizes()["dev"] + s.sizes()["test"] == 200
    text = " ".join(s.checks)
    assert "class 'mid' is absent from training" in text
    assert "leakage" in text and s.stats["leaked_rows_dev"] + s.stats["leaked_rows_test"] >= 5
    assert "fewer than data.min_split_rows" in text  # train-dev has 30 rows
    moved = table(tmp_path / "a.csv", "data.target=label", "data.features=[sqft,rooms,city]",
                  f"data.dev_path={tmp_path / 'b.csv'}", "data.target_fraction=0.5")
    assert moved.sizes()["train"] + moved.sizes()["train_dev"] == 400


def test_table_reweight_weighs_training_rows_like_the_dev_file(tmp_path):
    train, dev = houses(400, seed=1), houses(300, seed=2)
    dev["sqft"] += 600  # the dev/test file holds larger houses
    train.to_csv(tmp_path / "a.csv", index=False)
    dev.to_csv(tmp_path / "b.csv", index=False)
    s = table(tmp_path / "a.csv", "data.target=label", "data.features=[sqft,rooms,city]",
              f"data.dev_path={tmp_path / 'b.csv'}", "data.reweight=1")
    assert s.stats["shift_auc"] > 0.75
    assert list(s.description["numeric"])[0] == "sqft"  # column 0
    big = s.train.x[:, 0] > np.median(s.train.x[:, 0])  # standardized sqft: the larger half of the training rows
    assert s.train_weights[big].mean() > 2 * s.train_weights[~big].mean()


def test_missing_values_error_drop_impute(tmp_path):
    df = houses(200)
    df.loc[[3, 7], "sqft"] = np.nan
    df.loc[5, "city"] = None
    df.to_csv(tmp_path / "m.csv", index=False)
    args = (tmp_path / "m.csv", "data.target=label", "data.features=[sqft,rooms,city]")
    with pytest.raises(DataError, match=r"missing values in .*sqft \(2 rows\), city \(1 row\); set data.missing"):
        table(*args)
    assert sum(table(*args, "data.missing=drop").sizes().values()) == 197
    imputed = table(*args, "data.missing=impute")
    assert sum(imputed.sizes().values()) == 200 and np.isfinite(imputed.train.x).all()


def test_sql_source_on_a_real_sqlite_file(tmp_path):
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        houses().to_sql("houses", conn, index=False)
    cfg = compose_cfg("data=sql", f"data.url=sqlite:///{db}", "data.query='SELECT sqft, rooms, city, label FROM houses'",
                      "data.target=label", "data.dev_query='SELECT sqft, rooms, city, label FROM houses WHERE rooms > 3'")
    s = load(cfg.data, seed=0)
    assert s.task == "classification" and s.sizes()["train"] + s.sizes()["train_dev"] == 400
    cfg = compose_cfg("data=sql", f"data.url=sqlite:///{db}", "data.query='SELECT * FROM nope'", "data.target=label")
    with pytest.raises(DataError, match="data.query failed on sqlite.*no such table: nope"):
        load(cfg.data, seed=0)
    cfg = compose_cfg("data=sql", f"data.url=sqlite:///{tmp_path / 'missing.db'}", "data.query='SELECT 1'",
                      "data.target=label")
    with pytest.raises(DataError, match="no such SQLite database file"):
        load(cfg.data, seed=0)


# ---------------------------------------------------------------------------------- bad input, direct


@pytest.mark.parametrize("make, overrides, message", [
    (None, ["data.target=label"], r"data.path: no such file: .*nothere.csv"),
    ("", ["data.target=label"], r"is empty"),
    ("\x00\x01garbage\n\xff\xfe", ["data.target=label"], r"cannot read"),
    ("a,b\n", ["data.target=b"], r"has a header but no rows"),
    ("a,b\n1,x\n2,x\n3,x\n4,x\n5,x\n", ["data.target=b"], r"target 'b' has a single class \('x'\)"),
    ("a,b\n1,x\n2,y\n", ["data.target=price"], r"target column 'price' is not in .*; available columns: a, b"),
    ("a,b\n1,x\n2,y\n3,x\n", ["data.target=b"], r"has 3 rows, fewer than the splits need"),
    ("\n".join(["a,b"] + [f"{i},{'xy'[i % 2]}" for i in range(30)] + ["oops,x"]) + "\n", ["data.target=b"],
     r"column 'a' needs numbers but row 31 of .* holds 'oops'"),
    ("\n".join(["a,b"] + [f"{i},{'xy'[i % 2]}" for i in range(30)] + ["inf,x"]) + "\n", ["data.target=b"],
     r"column 'a' holds an infinite value at row 31 of .*bad.csv"),
    ("\n".join(["a,b"] + [f"{i},{'xy'[i % 2]}" for i in range(29)] + [",x"]) + "\n", ["data.target=b"],
     r"missing values in .*bad.csv: a \(1 row\); set data.missing=drop or data.missing=impute"),
])
def test_bad_tables_give_one_line(tmp_path, make, overrides, message):
    path = tmp_path / ("nothere.csv" if make is None else "bad.csv")
    if make is not None:
        path.write_bytes(make.encode("latin-1"))
    with pytest.raises(DataError, match=message) as info:
        table(path, *overrides)
    assert "\n" not in str(info.value)


def test_auto_human_error_needs_a_number_for_tables():
    with pytest.raises(ConfigError, match="data=table has no known Bayes error.*baseline.human_error"):
        configs.human_error("auto", None, required="data=table")
    assert configs.human_error(25000, None, required="data=table", unbounded=True) == 25000


# ------------------------------------------------------------------------------- images and sequences


def test_npz_images(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "img.npz", X=rng.integers(0, 255, size=(200, 3, 6, 6)).astype(np.uint8),
             y=rng.integers(0, 3, size=200))
    s = load(compose_cfg("data=npz", f"data.path={tmp_path / 'img.npz'}").data, seed=0)
    assert s.input_shape == (3, 6, 6) and s.n_classes == 3 and s.train.x.dtype == np.float32
    with pytest.raises(DataError, match="has no array 'X', 'y'; it holds: a"):
        np.savez(tmp_path / "bad.npz", a=np.zeros(3))
        load(compose_cfg("data=npz", f"data.path={tmp_path / 'bad.npz'}").data, seed=0)


def test_sequence_source_depends_on_far_tokens():
    cfg = compose_cfg("data=sequence", "data.n_train=500", "data.seq_len=12", "data.vocab=8")
    s = load(cfg.data, seed=0)
    x, y = s.train.x, s.train.y
    assert x.shape == (500, 12) and x.dtype == np.int64 and s.vocab == 8 and s.bayes_error == 0.0
    assert ((x[:, 0] + x[:, 6] > 8).astype(int) == y).all() and 0.35 < y.mean() < 0.65
    assert (x == 0).any() and (x[:, :7] != 0).all()  # padded after the far token, never before


@pytest.mark.parametrize("family, data, shape, vocab", [
    ("cnn", "digits", (64,), None), ("cnn", "npz", (3, 6, 6), None), ("mlp", "npz", (3, 6, 6), None),
    ("gru", "sequence", (12,), 8), ("transformer", "sequence", (12,), 8),
])
def test_model_families_forward(family, data, shape, vocab):
    import torch

    from dlexp import models

    cfg = compose_cfg(f"model={family}")
    if family == "gru":
        cfg.model.cell = "lstm"
    net = models.build(cfg.model, n_features=shape[0], n_classes=3, input_shape=shape, vocab=vocab, data_name=data)
    x = torch.randint(0, vocab, (5, *shape)) if vocab else torch.randn(5, *shape)
    if vocab:
        x[:, 9:] = 0  # padding
    assert net(x).shape == (5, 3)


def test_family_and_data_mismatch_is_a_config_error():
    from dlexp import models

    with pytest.raises(ConfigError, match="model=cnn needs images"):
        models.build(compose_cfg("model=cnn").model, n_features=10, n_classes=2, input_shape=(10,))
    with pytest.raises(ConfigError, match="use model=gru or model=transformer"):
        models.build(compose_cfg("model=mlp").model, n_features=12, n_classes=2, input_shape=(12,), vocab=8)


def test_regression_objective_errors_in_target_unit():
    import torch

    from dlexp.models.lit import Objective

    obj = Objective("regression", "rmse", mean=100.0, std=10.0)
    out = torch.tensor([[1.0], [-1.0]])   # standardized predictions 110 and 90
    y = torch.tensor([113.0, 86.0])
    assert obj.finish(obj.error_sum(out, y), 2) == pytest.approx(((9 + 16) / 2) ** 0.5)
    assert Objective("regression", "mae", 100.0, 10.0).finish(Objective("regression", "mae", 100.0, 10.0)
                                                              .error_sum(out, y), 2) == pytest.approx(3.5)


def test_recommendations_follow_the_family_config():
    from dlexp.diagnosis import SplitErrors, diagnose, recommend

    d = diagnose(SplitErrors(0.01, 0.2, 0.21, 0.21, 0.21))
    commands = lambda cfg: [a.command for a in recommend(d, cfg)]  # noqa: E731
    assert "dlexp train 'model.channels=[48,96]'" in commands({"model": {"name": "cnn", "channels": [24, 48]}})
    assert "dlexp train model.hidden_size=96" in commands({"model": {"name": "gru", "hidden_size": 48}})
    assert "dlexp train model.d_model=64 model.ff=96" in commands(
        {"model": {"name": "transformer", "d_model": 32, "heads": 4, "ff": 48, "layers": 1}})


# ------------------------------------------------------------------------------------ through the CLI


def dlexp(*args, cwd, timeout=240):
    env = dict(os.environ, DLEXP_RUNS_DIR=str(cwd / "runs"), COLUMNS="200")
    env.pop("DLEXP_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "dlexp", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_regression_table_end_to_end(tmp_path, csv):
    r = dlexp("train", "data=table", f"data.path={csv}", "data.target=price", "data.features=[sqft,rooms,city]",
              "baseline.human_error=20000", "diagnosis.relative_tolerance=0.05", "trainer.max_epochs=2",
              "data.min_split_rows=10", "model.hidden=[16]", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "rmse in the target's unit" in r.stdout
    doc = json.loads(dlexp("diagnose", "--json", cwd=tmp_path).stdout)
    assert doc["task"] == "regression" and doc["metric"] == "rmse" and doc["errors"]["human"] == 20000
    assert doc["errors"]["train"] > 1000 and 1000 < doc["tolerance"] < 10000  # 5% of the price's spread


@pytest.mark.slow
def test_bad_input_through_the_cli_is_one_line(tmp_path):
    (tmp_path / "one.csv").write_text("a,b\n1,x\n2,x\n3,x\n4,x\n5,x\n")
    for args, text in [(["data.path=missing.csv", "data.target=b"], "no such file: missing.csv"),
                       (["data.path=one.csv", "data.target=zz"], "available columns: a, b")]:
        r = dlexp("train", "data=table", "baseline.human_error=0.1", *args, cwd=tmp_path)
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("dlexp: error:"), r.stderr
        assert text in lines[0] and "Traceback" not in r.stdout
    r = dlexp("train", "data=table", "data.path=one.csv", "data.target=a", cwd=tmp_path)  # human auto
    # too few rows to estimate the Bayes error: one line suggesting a number to give instead
    assert r.returncode == 2 and "estimates the Bayes error" in r.stderr and "baseline.human_error=" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    failed = json.loads(dlexp("runs", "--json", cwd=tmp_path).stdout)
    assert failed and {run["status"] for run in failed} == {"FAILED"}  # logged, not left RUNNING
