"""The embedded data sources: the synthetic task with a known Bayes error, and scikit-learn's digits."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from dlexp.config.schema import DigitsData, SyntheticData
from dlexp.data import SPLIT_NAMES, load
from dlexp.data import synthetic
from dlexp.errors import ConfigError


def synthetic_cfg(**kw):
    base = dict(n_train=600, n_train_dev=200, n_dev=300, n_test=400)
    base.update(kw)
    return OmegaConf.structured(SyntheticData(**base))


def true_labels(split, cfg):
    plane, _ = synthetic._task(cfg.n_features, cfg.task_seed)
    return synthetic.label(split.x.astype(np.float64), plane, cfg.n_classes)


def test_synthetic_sizes_shapes_and_labels():
    cfg = synthetic_cfg(n_features=7, n_classes=5)
    s = load(cfg, seed=0)
    assert s.sizes() == {"train": 600, "train_dev": 200, "dev": 300, "test": 400}
    assert s.n_classes == 5 and s.n_features == 7
    for name in SPLIT_NAMES:
        split = getattr(s, name)
        assert split.x.shape == (len(split), 7)
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.y.min() >= 0 and split.y.max() < 5
    # every class occurs in training
    assert set(np.unique(s.train.y)) == set(range(5))


@pytest.mark.parametrize("noise", [0.0, 0.05, 0.2])
def test_synthetic_bayes_error_is_the_label_noise(noise):
    """With many draws, the labelling function disagrees with the labels at the rate label_noise."""
    cfg = synthetic_cfg(n_train=200_000, n_train_dev=10, n_dev=50_000, n_test=10, label_noise=noise, shift=1.5)
    s = load(cfg, seed=3)
    assert s.bayes_error == pytest.approx(noise)
    assert np.mean(true_labels(s.train, cfg) != s.train.y) == pytest.approx(noise, abs=0.01)
    # the shift moves the inputs, not the labelling: the Bayes error is the same on dev
    assert np.mean(true_labels(s.dev, cfg) != s.dev.y) == pytest.approx(noise, abs=0.01)


def test_noisy_labels_are_another_class_spread_evenly():
    cfg = synthetic_cfg(n_train=100_000, label_noise=0.3, n_classes=4)
    s = load(cfg, seed=0)
    truth = true_labels(s.train, cfg)
    wrong = truth != s.train.y
    offsets = (s.train.y[wrong] - truth[wrong]) % 4
    counts = np.bincount(offsets, minlength=4)
    assert counts[0] == 0  # a replaced label is never the true one
    assert counts[1:] / counts[1:].sum() == pytest.approx([1 / 3] * 3, abs=0.02)


def test_shift_moves_dev_and_test_but_not_train_dev():
    cfg = synthetic_cfg(n_train=5000, n_train_dev=5000, n_dev=5000, n_test=5000, shift=2.0)
    s = load(cfg, seed=0)
    _, direction = synthetic._task(cfg.n_features, cfg.task_seed)

    def along(split):
        return float(np.mean(split.x @ direction))

    assert along(s.train) == pytest.approx(0.0, abs=0.1)
    assert along(s.train_dev) == pytest.approx(0.0, abs=0.1)
    assert along(s.dev) == pytest.approx(2.0, abs=0.1)
    assert along(s.test) == pytest.approx(2.0, abs=0.1)
    # no shift: dev comes from the training distribution
    same = load(synthetic_cfg(n_dev=5000, shift=0.0), seed=0)
    assert float(np.mean(same.dev.x @ direction)) == pytest.approx(0.0, abs=0.1)


def test_target_fraction_mixes_shifted_examples_into_train_and_train_dev():
    cfg = synthetic_cfg(n_train=20_000, n_train_dev=20_000, shift=2.0, target_fraction=0.5)
    s = load(cfg, seed=0)
    _, direction = synthetic._task(cfg.n_features, cfg.task_seed)
    assert float(np.mean(s.train.x @ direction)) == pytest.approx(1.0, abs=0.1)
    assert float(np.mean(s.train_dev.x @ direction)) == pytest.approx(1.0, abs=0.1)


def test_same_seed_same_arrays_other_seed_other_draws():
    cfg = synthetic_cfg()
    a, b, c = load(cfg, seed=7), load(cfg, seed=7), load(cfg, seed=8)
    for name in SPLIT_NAMES:
        np.testing.assert_array_equal(getattr(a, name).x, getattr(b, name).x)
        np.testing.assert_array_equal(getattr(a, name).y, getattr(b, name).y)
    assert not np.array_equal(a.train.x, c.train.x)


def test_seed_changes_the_draws_not_the_task():
    cfg = synthetic_cfg(n_train=20_000, label_noise=0.0)
    for seed in (0, 1):
        s = load(cfg, seed=seed)
        np.testing.assert_array_equal(true_labels(s.train, cfg), s.train.y)
    other_task = synthetic_cfg(n_train=20_000, label_noise=0.0, task_seed=1)
    s = load(other_task, seed=0)
    assert np.mean(true_labels(s.train, cfg) != s.train.y) > 0.3


def test_a_linear_model_cannot_reach_the_bayes_error():
    from sklearn.linear_model import LogisticRegression

    cfg = synthetic_cfg(n_train=5000, n_train_dev=2000, label_noise=0.05)
    s = load(cfg, seed=0)
    clf = LogisticRegression(max_iter=500).fit(s.train.x, s.train.y)
    error = 1 - clf.score(s.train_dev.x, s.train_dev.y)
    assert error > cfg.label_noise + 0.3, error


def test_a_nonlinear_model_gets_close_to_the_bayes_error():
    """The boundary is learnable: a nearest-neighbour vote on the labelled plane nears label_noise."""
    from sklearn.neighbors import KNeighborsClassifier

    cfg = synthetic_cfg(n_train=20_000, n_train_dev=2000, label_noise=0.05)
    s = load(cfg, seed=0)
    plane, _ = synthetic._task(cfg.n_features, cfg.task_seed)
    clf = KNeighborsClassifier(n_neighbors=15).fit(s.train.x @ plane, s.train.y)
    error = 1 - clf.score(s.train_dev.x @ plane, s.train_dev.y)
    assert error < cfg.label_noise + 0.1, error


# ------------------------------------------------------------------------------------------- digits


def digits_cfg(**kw):
    return OmegaConf.structured(DigitsData(**kw))


def test_digits_four_disjoint_splits_of_all_1797_images():
    s = load(digits_cfg(), seed=0)
    sizes = s.sizes()
    assert sum(sizes.values()) == 1797
    assert all(n > 0 for n in sizes.values())
    assert sizes["train"] > sizes["dev"] > sizes["train_dev"]
    assert s.n_classes == 10 and s.n_features == 64
    assert s.bayes_error is None
    rows = {name: {row.tobytes() for row in getattr(s, name).x} for name in SPLIT_NAMES}
    assert sum(len(r) for r in rows.values()) == 1797  # no image is in two splits (the 1797 are distinct)
    for name in SPLIT_NAMES:
        split = getattr(s, name)
        assert set(np.unique(split.y)) == set(range(10)), name  # stratified: every digit everywhere
        assert split.x.min() >= 0.0 and split.x.max() <= 1.0


def test_digits_fractions_and_training_cap():
    s = load(digits_cfg(dev_fraction=0.2, test_fraction=0.2, train_dev_fraction=0.1), seed=0)
    assert s.sizes()["dev"] == pytest.approx(0.2 * 1797, abs=2)
    assert s.sizes()["test"] == pytest.approx(0.2 * 1797, abs=2)
    assert s.sizes()["train_dev"] == pytest.approx(0.1 * 1797, abs=2)
    capped = load(digits_cfg(n_train=100), seed=0)
    assert capped.sizes()["train"] == 100


def test_digits_split_is_fixed_by_the_seed():
    a, b = load(digits_cfg(), seed=1), load(digits_cfg(), seed=1)
    np.testing.assert_array_equal(a.dev.x, b.dev.x)
    assert not np.array_equal(a.dev.x, load(digits_cfg(), seed=2).dev.x)


def test_unknown_source_is_a_config_error():
    with pytest.raises(ConfigError, match="nope"):
        load(OmegaConf.create({"name": "nope"}), seed=0)


def test_bayes_is_no_data_source(dlexp_proc):
    """The Bayes-error bracket lives in the diagnosis and on the training side, not among the data sources."""
    result = dlexp_proc("train", "data.name=bayes")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["dlexp: error: unknown data source 'bayes'"]

