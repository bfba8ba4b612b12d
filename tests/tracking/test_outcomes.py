"""The outcomes artifact: what it keeps, how big it is for a 60,000-example run, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from dlexp.diagnosis.compare import Outcomes
from dlexp.tracking import outcomes

SIZES = {"train": 60_000, "train_dev": 10_000, "dev": 10_000, "test": 10_000}


def test_classification_outcomes_come_back_bit_for_bit_in_a_few_kb(tmp_path):
    rng = np.random.default_rng(0)
    wrong = {s: rng.random(n) < 0.12 for s, n in SIZES.items()}
    kept = Outcomes("classification", "error_rate", wrong, {s: f"fp-{s}" for s in SIZES})
    path = outcomes.write(kept, tmp_path)
    assert path.stat().st_size < 20_000  # one bit per example, compressed
    back = outcomes.read(path)
    assert (back.task, back.metric, dict(back.fingerprints)) == ("classification", "error_rate", kept.fingerprints)
    for s in SIZES:
        assert back.values[s].dtype == bool and np.array_equal(back.values[s], wrong[s])


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_regression_errors_come_back_to_within_005_percent_in_a_few_hundred_kb(tmp_path, metric):
    rng = np.random.default_rng(1)
    # heavy-tailed errors in a large unit (house prices): float16 alone would overflow at 65,504
    errors = {s: np.abs(rng.standard_t(3, n)) * 40_000 for s, n in SIZES.items()}
    path = outcomes.write(Outcomes("regression", metric, errors, {}), tmp_path)
    assert path.stat().st_size < 300_000
    back = outcomes.read(path)
    for s in SIZES:
        a, b = errors[s], back.values[s]
        stat = (lambda e: np.sqrt(np.mean(e * e))) if metric == "rmse" else np.mean
        assert stat(b) == pytest.approx(stat(a), rel=5e-4)


def test_the_fingerprint_changes_with_any_row_label_or_order():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(50, 4)).astype(np.float32), rng.integers(0, 3, 50)
    base = outcomes.fingerprint(x, y)
    assert outcomes.fingerprint(x.copy(), y.copy()) == base
    x2 = x.copy()
    x2[7, 1] += 1e-3
    y2 = y.copy()
    y2[3] = (y2[3] + 1) % 3
    assert len({base, outcomes.fingerprint(x2, y), outcomes.fingerprint(x, y2),
                outcomes.fingerprint(x[::-1], y[::-1])}) == 4


def test_a_file_that_is_not_dlexp_outcomes_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", train=np.zeros(3))
    with pytest.raises(ValueError, match="no dlexp outcomes"):
        outcomes.read(tmp_path / "other.npz")
