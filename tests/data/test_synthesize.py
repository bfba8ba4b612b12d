"""data.synthesize: training images given the dev images' blur, grain and tone (dlexp/data/synthesize.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from dlexp import config as configs
from dlexp.data import load, synthesize
from dlexp.data.examples import write_shapes
from dlexp.data.images import read, scan
from dlexp.errors import ConfigError, DataError

configs.register()


def pixels(folder, size=16):
    found = scan(folder, "data.path")
    return read([f for c in found for f in found[c]], size=size, color="rgb")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    return {"train": write_shapes(root / "train", per_class=20, size=16),
            "served": write_shapes(root / "served", per_class=10, size=16, seed=1, blur=1.5, light=0.5),
            "same": write_shapes(root / "same", per_class=10, size=16, seed=2)}


def splits_of(*overrides):
    with initialize_config_module("dlexp.configs", version_base="1.3"):
        cfg = compose("config", overrides=["data=images", "data.image_size=16", *overrides])
    configs.check(cfg)
    return load(cfg.data, seed=0)


def test_the_fitted_conditions_are_those_the_dev_images_were_taken_under(folders):
    train, served = pixels(folders["train"]), pixels(folders["served"])
    cond = synthesize.fit(train, served)
    assert 1.0 <= cond["blur"] <= 2.25  # the served pictures were blurred by 1.5 px
    copies = synthesize.transform(train, cond)
    # darker and flatter, as the served pictures: each channel's mean and spread within a few hundredths
    np.testing.assert_allclose(copies.mean(axis=(0, 2, 3)), served.mean(axis=(0, 2, 3)), atol=0.03)
    np.testing.assert_allclose(copies.std(axis=(0, 2, 3)), served.std(axis=(0, 2, 3)), atol=0.03)
    assert synthesize.detail(copies) == pytest.approx(synthesize.detail(served), rel=0.25)
    assert synthesize.detail(train) > 2 * synthesize.detail(served)


def test_dev_images_taken_like_training_ones_are_neither_blurred_nor_noised(folders):
    cond = synthesize.fit(pixels(folders["train"]), pixels(folders["same"]))
    assert cond["blur"] <= 0.25 and cond["noise"] <= 0.02


def test_grainier_dev_images_give_noise_and_no_blur(folders):
    train, same = pixels(folders["train"]), pixels(folders["same"])
    grainy = np.clip(same + np.random.default_rng(3).normal(0, 0.08, same.shape), 0, 1).astype(np.float32)
    cond = synthesize.fit(train, grainy)
    assert cond["blur"] == 0 and 0.05 <= cond["noise"] <= 0.11
    assert synthesize.detail(synthesize.transform(train, cond)) == pytest.approx(synthesize.detail(grainy), rel=0.25)


def test_synthesize_adds_dev_like_copies_to_training_only(folders):
    base = ("data.path=" + str(folders["train"]), "data.dev_path=" + str(folders["served"]))
    plain, half, every = (splits_of(*base, f"data.synthesize={share}") for share in (0, 0.5, 1))
    n = len(plain.train)
    assert len(half.train) == n + round(n / 2) and len(every.train) == 2 * n
    for name in ("train_dev", "dev", "test"):  # the splits that measure stay as read
        assert len(getattr(every, name)) == len(getattr(plain, name))
        np.testing.assert_array_equal(getattr(every, name).y, getattr(plain, name).y)
    # each copy keeps its original's label and row (its file), so error analysis still names a file
    np.testing.assert_array_equal(every.train.y[n:], plain.train.y)
    np.testing.assert_array_equal(every.train.rows[n:], plain.train.rows)
    assert every.stats["synth_added"] == n and every.stats["synth_brightness"] < -0.1
    assert any(c.startswith(f"data.synthesize: added {n} training images") for c in every.checks)
    assert "synth_added" not in plain.stats


def test_synthesize_without_a_dev_folder_or_out_of_range_is_one_clear_error(folders):
    with pytest.raises(DataError, match="needs a dev folder.*data.dev_path"):
        splits_of(f"data.path={folders['train']}", "data.synthesize=1")
    with pytest.raises(ConfigError, match=r"data.synthesize must be in \[0, 1\]"):
        splits_of(f"data.path={folders['train']}", f"data.dev_path={folders['served']}", "data.synthesize=2")
