"""Where the baseline comes from: none (avoidable bias unknown, verdict on the other gaps) and an estimated
Bayes error (its range, method and reference model's errors in the document, the MLflow names and tags)."""

from __future__ import annotations

from dlexp.diagnosis import Report, SplitErrors, diagnose, recommend

SIZES = {"train": 4000, "train_dev": 1000, "dev": 1000, "test": 1000}


def test_no_baseline_leaves_avoidable_bias_unknown_and_judges_the_other_gaps():
    errors = SplitErrors(human=0.0, train=0.30, train_dev=0.38, dev=0.39, test=0.39)
    known = diagnose(errors, sizes=SIZES)
    assert known.verdict == "avoidable_bias"  # against a perfect baseline, 30% training error dominates
    d = diagnose(errors, sizes=SIZES, human_known=False)
    assert d.verdict == "variance" and d.problems == ("variance",)
    bias = d.gap("avoidable_bias")
    assert not bias.problem and bias.value == 0.30  # at most the training error
    assert bias.interval[0] == 0.0 and bias.interval[1] >= 0.30
    assert any("No baseline" in n and "at most the training error" in n for n in d.notes)
    report = Report(d, recommend(d, None), sizes=SIZES, baseline={"source": "none"})
    doc = report.document()
    assert doc["errors"]["human"] is None and doc["gaps"]["avoidable_bias"] is None
    assert "error/human" not in report.metrics() and "gap/avoidable_bias" not in report.metrics()
    assert report.tags()["dlexp.human_source"] == "none"
    assert all(a.problem != "avoidable_bias" for a in report.actions)


def test_an_estimated_bayes_error_is_a_range_with_its_method_and_reference():
    baseline = {"source": "estimated", "lower": 0.04, "upper": 0.08, "method": "lower: plug-in; upper: train-dev",
                "reference": {"train": 0.01, "train_dev": 0.07, "dev": 0.09}}
    errors = SplitErrors(human=0.06, train=0.09, train_dev=0.10, dev=0.11, test=0.11)
    narrow = diagnose(errors, sizes=SIZES)
    d = diagnose(errors, sizes=SIZES, human_range=(0.04, 0.08))
    assert d.gap("avoidable_bias").interval[0] < narrow.gap("avoidable_bias").interval[0]  # the range widens it
    report = Report(d, recommend(d, None), sizes=SIZES, baseline=baseline)
    metrics, tags = report.metrics(), report.tags()
    assert (metrics["error/human/lo"], metrics["error/human"], metrics["error/human/hi"]) == (0.04, 0.06, 0.08)
    assert metrics["reference/dev"] == 0.09
    assert tags["dlexp.human_source"] == "estimated" and tags["dlexp.bayes_method"].startswith("lower: plug-in")
    assert report.document()["baseline"]["reference"]["train_dev"] == 0.07
