"""Paired comparison of two runs: the statistics against reference implementations, and the method choice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlexp.diagnosis import GAP_TERMS, SPLITS, newcombe
from dlexp.diagnosis.compare import Outcomes, compare, mcnemar_exact, newcombe_paired, two_proportion_p


def wrong_from_table(both: int, a_only: int, b_only: int, neither: int, *, seed: int = 0):
    """Per-example wrong/right of runs A and B with the given paired table, in a shuffled order."""
    a = np.array([1] * both + [1] * a_only + [0] * b_only + [0] * neither, dtype=bool)
    b = np.array([1] * both + [0] * a_only + [1] * b_only + [0] * neither, dtype=bool)
    order = np.random.default_rng(seed).permutation(len(a))
    return a[order], b[order]


def run(wrong: dict, *, human=0.0, run_id="A", fingerprint="same", task="classification", metric="error_rate"):
    """A run's document and outcomes from its per-example outcomes on each split."""
    if task == "classification":
        errors = {s: float(np.mean(w)) for s, w in wrong.items()}
    else:
        errors = {s: float(np.sqrt(np.mean(np.square(w)))) if metric == "rmse" else float(np.mean(w))
                  for s, w in wrong.items()}
    errors["human"] = human
    gaps = {g: errors[hi] - errors[lo] for g, (hi, lo) in GAP_TERMS.items()}
    doc = {"run_id": run_id, "task": task, "metric": metric, "errors": errors, "gaps": gaps,
           "sizes": {s: len(w) for s, w in wrong.items()}, "verdict": "variance", "tolerance": 0.01}
    fingerprints = {s: f"{fingerprint}-{s}" for s in wrong}
    return doc, Outcomes(task, metric, wrong, fingerprints)


def tables(seed=3, count=25):
    rng = np.random.default_rng(seed)
    fixed = [(0, 0, 0, 10), (5, 0, 0, 5), (3, 7, 7, 20), (10, 1, 9, 30), (59, 16, 6, 80), (0, 12, 2, 40)]
    return fixed + [tuple(int(x) for x in rng.integers(0, 40, 4)) for _ in range(count)]


@pytest.mark.parametrize("table", tables())
def test_mcnemar_p_value_matches_statsmodels_exact(table):
    from statsmodels.stats.contingency_tables import mcnemar

    both, a_only, b_only, neither = table
    # statsmodels' table: rows = A (wrong, right), columns = B (wrong, right)
    reference = mcnemar([[both, a_only], [b_only, neither]], exact=True).pvalue
    assert mcnemar_exact(a_only, b_only) == pytest.approx(reference, rel=1e-12, abs=1e-15)
    if sum(table) == 0:
        return
    wa, wb = wrong_from_table(*table)
    a, oa = run({s: wa for s in SPLITS})
    b, ob = run({s: wb for s in SPLITS}, run_id="B")
    dev = compare(a, b, outcomes_a=oa, outcomes_b=ob).splits["dev"]
    assert dev.method == "paired" and dev.test == "mcnemar_exact"
    assert dev.p_value == pytest.approx(reference, rel=1e-12, abs=1e-15)
    assert dev.discordant == {"a_only": a_only, "b_only": b_only}
    assert dev.diff == pytest.approx((b_only - a_only) / sum(table))


def test_paired_interval_matches_the_published_example():
    # Fagerland, Lydersen & Laake, Statistical Analysis of Contingency Tables (2017), ch. 8 (Cavo et al. 2012):
    # the table [[59, 6], [16, 80]], Newcombe's square-and-add interval -0.0621 (-0.1186 to -0.0046)
    lo, hi = newcombe_paired(59, 6, 16, 80)
    assert (round(lo, 4), round(hi, 4)) == (-0.1186, -0.0046)
    # the same table as two runs' outcomes: B wrong on 59 + 6, A wrong on 59 + 16
    wa, wb = wrong_from_table(59, 16, 6, 80)
    a, oa = run({s: wa for s in SPLITS})
    b, ob = run({s: wb for s in SPLITS}, run_id="B")
    dev = compare(a, b, outcomes_a=oa, outcomes_b=ob).splits["dev"]
    assert round(dev.diff, 4) == -0.0621
    assert dev.interval == pytest.approx((lo, hi))


def test_paired_interval_covers_the_true_difference_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    probs = np.array([0.10, 0.06, 0.03, 0.81])  # both wrong, A only, B only, neither: err_B - err_A = -0.03
    n, sims = 200, 2000
    counts = rng.multinomial(n, probs, size=sims)
    covered = 0
    for both, a_only, b_only, neither in counts:
        lo, hi = newcombe_paired(int(both), int(b_only), int(a_only), int(neither))
        covered += lo <= probs[2] - probs[1] <= hi
    assert 0.93 <= covered / sims <= 0.97


def test_two_proportion_p_matches_statsmodels_ztest():
    from statsmodels.stats.proportion import proportions_ztest

    for (x1, n1, x2, n2) in [(100, 1000, 130, 1000), (3, 50, 9, 70), (40, 400, 41, 500)]:
        _, reference = proportions_ztest([x1, x2], [n1, n2])
        assert two_proportion_p(x1 / n1, n1, x2 / n2, n2) == pytest.approx(reference, rel=1e-9)


def test_same_examples_are_paired_and_paired_is_more_powerful():
    # 1000 examples; A wrong on 145, B on 125; they disagree on 30 (25 A only, 5 B only)
    wa, wb = wrong_from_table(120, 25, 5, 850)
    a, oa = run({s: wa for s in SPLITS})
    b, ob = run({s: wb for s in SPLITS}, run_id="B")
    paired = compare(a, b, outcomes_a=oa, outcomes_b=ob).splits["dev"]
    assert paired.method == "paired" and paired.reason is None
    assert paired.significant and paired.p_value < 0.001 and paired.interval[1] < 0
    # different examples (other fingerprints): independent, Newcombe's interval of two Wilson intervals
    b2, ob2 = run({s: wb for s in SPLITS}, run_id="B", fingerprint="other")
    independent = compare(a, b2, outcomes_a=oa, outcomes_b=ob2).splits["dev"]
    assert independent.method == "independent" and "different examples" in independent.reason
    assert independent.interval == pytest.approx(newcombe(0.125, 1000, 0.145, 1000))
    assert independent.interval[0] < 0 < independent.interval[1] and not independent.significant


def test_a_run_without_outcomes_falls_back_to_independent_intervals():
    wa, wb = wrong_from_table(120, 25, 5, 850)
    a, oa = run({s: wa for s in SPLITS})
    b, _ = run({s: wb for s in SPLITS}, run_id="B")
    c = compare(a, b, outcomes_a=oa, outcomes_b=None)
    assert {s.method for s in c.splits.values()} == {"independent"}
    assert "no per-example outcomes kept for run B" in c.splits["train"].reason
    assert any("Independent intervals" in note for note in c.notes)


def test_a_run_compared_with_itself_changes_nothing():
    rng = np.random.default_rng(1)
    wrong = {s: rng.random(500) < 0.2 for s in SPLITS}
    a, oa = run(wrong)
    c = compare(a, dict(a, run_id="A2"), outcomes_a=oa, outcomes_b=oa)
    for s in c.splits.values():
        assert s.method == "paired" and s.diff == 0 and s.p_value == 1.0 and not s.significant
        assert s.interval[0] <= 0 <= s.interval[1]
    assert {g.change for g in c.gaps.values()} == {"unchanged"}
    assert c.summary.startswith("B changed no gap significantly")
    assert not c.improved("dev")


def test_gap_changes_follow_the_split_changes():
    rng = np.random.default_rng(2)
    n = 3000
    base = rng.random(n)
    wrong_a = {"train": base < 0.05, "train_dev": base < 0.20, "dev": base < 0.20, "test": base < 0.20}
    # B: the same train error, 8 points fewer errors on the three held-out splits (a variance fix)
    wrong_b = {"train": base < 0.05, "train_dev": base < 0.12, "dev": base < 0.12, "test": base < 0.12}
    a, oa = run(wrong_a)
    b, ob = run(wrong_b, run_id="B")
    c = compare(a, b, outcomes_a=oa, outcomes_b=ob)
    v = c.gaps["variance"]
    assert v.change == "lowered" and v.diff == pytest.approx(-0.08, abs=0.01)
    assert c.gaps["avoidable_bias"].change == "unchanged" and c.gaps["avoidable_bias"].diff == 0
    assert c.gaps["data_mismatch"].change == "unchanged"
    assert c.improved("dev")
    assert c.summary.startswith("B lowered variance (")
    assert "left avoidable_bias, data_mismatch and dev_overfitting unchanged" in c.summary


def test_regression_is_compared_by_a_paired_bootstrap():
    rng = np.random.default_rng(4)
    hard = {s: np.abs(rng.normal(0, 1.0, 800)) for s in SPLITS}  # per-example difficulty shared by both runs
    err_a = {s: hard[s] + np.abs(rng.normal(0, 0.05, 800)) for s in SPLITS}
    err_b = {s: 0.97 * hard[s] + np.abs(rng.normal(0, 0.05, 800)) for s in SPLITS}
    a, oa = run(err_a, task="regression", metric="rmse", human=0.1)
    b, ob = run(err_b, task="regression", metric="rmse", human=0.1, run_id="B")
    paired = compare(a, b, outcomes_a=oa, outcomes_b=ob, n_boot=500).splits["dev"]
    b2, ob2 = run(err_b, task="regression", metric="rmse", human=0.1, run_id="B", fingerprint="other")
    independent = compare(a, b2, outcomes_a=oa, outcomes_b=ob2, n_boot=500).splits["dev"]
    assert paired.method == "paired" and paired.interval_method == "paired_bootstrap"
    assert independent.method == "independent" and independent.interval_method == "bootstrap"
    width = lambda s: s.interval[1] - s.interval[0]  # noqa: E731
    assert width(paired) < width(independent) / 3
    assert paired.significant and paired.diff < 0 and not independent.significant
    same = compare(a, a, outcomes_a=oa, outcomes_b=oa, n_boot=200)
    assert all(s.interval == (0.0, 0.0) and s.p_value == 1.0 for s in same.splits.values())


def test_runs_of_different_tasks_or_metrics_are_refused():
    wa, _ = wrong_from_table(10, 5, 5, 80)
    a, _ = run({s: wa for s in SPLITS})
    r, _ = run({s: wa.astype(float) for s in SPLITS}, task="regression", metric="rmse")
    with pytest.raises(ValueError, match="classification.*regression"):
        compare(a, r)
    with pytest.raises(ValueError, match="rmse.*mae"):
        compare(r, dict(r, metric="mae"))


def test_document_has_the_documented_shape_and_is_json():
    wa, wb = wrong_from_table(120, 25, 5, 850)
    a, oa = run({s: wa for s in SPLITS})
    b, ob = run({s: wb for s in SPLITS}, run_id="B")
    doc = json.loads(json.dumps(compare(a, b, outcomes_a=oa, outcomes_b=ob).document()))
    assert (doc["a"], doc["b"]) == ("A", "B")
    assert set(doc["splits"]) == set(SPLITS) and set(doc["gaps"]) == set(GAP_TERMS)
    for s in doc["splits"].values():
        assert {"a", "b", "diff", "interval", "p_value", "method"} <= set(s)
        assert s["method"] in ("paired", "independent")
    for g in doc["gaps"].values():
        assert {"a", "b", "diff", "interval"} <= set(g)
    assert set(doc["verdicts"]) == {"a", "b"} and isinstance(doc["summary"], str)


def test_a_new_human_level_moves_avoidable_bias_and_says_so():
    rng = np.random.default_rng(5)
    wrong = {s: rng.random(1000) < 0.1 for s in SPLITS}
    a, oa = run(wrong, human=0.02)
    b, ob = run(wrong, human=0.05, run_id="B")  # the same model, judged against a higher human level
    c = compare(a, b, outcomes_a=oa, outcomes_b=ob)
    bias = c.gaps["avoidable_bias"]
    assert bias.diff == pytest.approx(-0.03) and bias.change == "lowered"
    assert c.gaps["variance"].change == "unchanged"
    assert any("different human levels" in note for note in c.notes)
