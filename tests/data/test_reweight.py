"""`data.reweight`: training rows drawn by how much they look like dev (a data mismatch move)."""

from __future__ import annotations

import collections

import numpy as np
import torch
from omegaconf import OmegaConf

from dlexp.config.schema import SyntheticData
from dlexp.data import load, synthetic
from dlexp.data.reweight import MAX_WEIGHT, effective_share, weights
from dlexp.models.lit import Batches


def splits(**kw):
    base = dict(n_train=1500, n_train_dev=200, n_dev=600, n_test=200)
    return load(OmegaConf.structured(SyntheticData(**dict(base, **kw))), seed=0)


def test_a_shift_gives_more_weight_to_training_rows_like_dev():
    s = splits(shift=1.5, reweight=1.0)
    _, direction = synthetic._task(10, 0)
    along = s.train.x @ direction  # dev is moved 1.5 standard deviations along this direction
    w = s.train_weights
    assert w is not None and w.shape == (1500,) and abs(w.mean() - 1) < 1e-4
    assert np.corrcoef(along, w)[0, 1] > 0.5
    assert w[along > 1].mean() > 3 * w[along < -1].mean()
    assert s.stats["shift_auc"] > 0.75          # the classifier sees the shift
    assert 0 < s.stats["reweight_ess"] < 0.7     # and the weights leave fewer effective rows
    assert w.max() <= MAX_WEIGHT + 1e-6
    # the splits that are measured stay as drawn
    plain = splits(shift=1.5)
    assert plain.train_weights is None and "shift_auc" not in plain.stats
    assert np.array_equal(plain.train.x, s.train.x) and np.array_equal(plain.dev.x, s.dev.x)


def test_half_strength_is_flatter_than_the_full_ratio():
    full, half = splits(shift=1.5, reweight=1.0), splits(shift=1.5, reweight=0.5)
    assert half.stats["reweight_ess"] > full.stats["reweight_ess"]
    assert half.train_weights.std() < full.train_weights.std()


def test_without_a_shift_the_weights_stay_near_even_and_a_check_says_why():
    s = splits(shift=0.0, reweight=1.0)
    assert s.stats["shift_auc"] < 0.6
    assert s.stats["reweight_ess"] > 0.8
    assert any("no better than chance" in c for c in s.checks)


def test_weights_have_mean_one_and_a_cap():
    w = weights(np.r_[np.ones(99), 1e6], 1.0)
    assert abs(w.mean() - 1) < 1e-9 and w.max() <= MAX_WEIGHT
    assert effective_share(np.ones(10)) == 1.0


def test_weighted_batches_draw_rows_in_proportion():
    x, y = torch.arange(4.0).unsqueeze(1), torch.arange(4)
    b = Batches(x, y, 2, shuffle=True, seed=0, weights=torch.tensor([1.0, 3.0, 0.0, 0.0]))
    seen = collections.Counter()
    for _ in range(400):
        for _, yb in b:
            assert len(yb) == 2  # an epoch still has n rows
            seen.update(yb.tolist())
    assert set(seen) == {0, 1}
    assert 2.6 < seen[1] / seen[0] < 3.4
    # the same seed and epoch draw the same rows: a resumed run continues the same order
    again = Batches(x, y, 2, shuffle=True, seed=0, weights=torch.tensor([1.0, 3.0, 0.0, 0.0]))
    first = Batches(x, y, 2, shuffle=True, seed=0, weights=torch.tensor([1.0, 3.0, 0.0, 0.0]))
    assert [yb.tolist() for _, yb in again] == [yb.tolist() for _, yb in first]
