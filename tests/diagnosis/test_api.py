"""`dlexp.diagnose` (the notebook API) and the diagnosis of errors without a train-dev split."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import dlexp
from dlexp.diagnosis import JOINT_GAP, SplitErrors, diagnose, newcombe
from dlexp.render import markdown

SIZES = {"train": 8000, "train_dev": 2000, "dev": 2000, "test": 2000}


def test_api_gives_the_diagnosis_the_core_gives():
    d = dlexp.diagnose(train=0.015, train_dev=0.10, dev=0.11, test=0.11, human=0.01, sizes=SIZES)
    core = diagnose(SplitErrors(0.01, 0.015, 0.10, 0.11, 0.11), sizes=SIZES)
    assert d.verdict == core.verdict == "variance"
    assert d.problems == core.problems
    assert d.gaps["variance"].interval == core.gap("variance").interval
    assert {a.problem for a in d.actions} == {"variance"} and all(a.command is None for a in d.actions)
    doc = d.document()
    assert doc["verdict"] == "variance" and doc["sizes"] == SIZES
    json.dumps(doc)  # what `dlexp diagnose --json` prints
    assert "**Verdict: `variance`**" in d._repr_markdown_()


def test_api_takes_a_range_of_annotators_and_no_baseline():
    ranged = dlexp.diagnose(train=0.05, train_dev=0.05, dev=0.05, test=0.05, human=(0.01, 0.07), sizes=SIZES)
    assert ranged.diagnosis.intervals["human"] == (0.01, 0.07)
    assert not ranged.gap("avoidable_bias").problem  # the range's upper end is above the training error
    none = dlexp.diagnose(train=0.30, train_dev=0.30, dev=0.30, test=0.30)
    assert not none.diagnosis.human_known and none.verdict == "within_tolerance"
    assert none.document()["errors"]["human"] is None


@pytest.mark.parametrize("kwargs, named", [
    ({"train": -0.1}, "train error must be a number in [0, 1]"),
    ({"human": 2.0}, "human error must be a number in [0, 1]"),
    ({"human": (0.01, 0.02, 0.03)}, "human takes an error rate or a range"),
    ({"sizes": {"validation": 100}}, "not validation"),
    ({"sizes": {"dev": 0}}, "sizes['dev'] must be a positive number"),
    ({"tolerance": -1}, "tolerance must be a number >= 0"),
])
def test_api_refuses_bad_figures_naming_them(kwargs, named):
    args = {"train": 0.1, "dev": 0.1, "test": 0.1, "human": 0.01, **kwargs}
    with pytest.raises(ValueError) as info:
        dlexp.diagnose(**args)
    assert named in str(info.value)


def test_import_dlexp_and_diagnose_load_no_heavy_library():
    code = ("import sys, dlexp; dlexp.diagnose(train=0.1, train_dev=0.1, dev=0.1, test=0.1, human=0.01); "
            "print([m for m in ('torch', 'pytorch_lightning', 'lightning', 'mlflow', 'rich', 'matplotlib') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ no train-dev error


def test_without_train_dev_the_train_to_dev_gap_is_one_gap():
    errors = SplitErrors(0.01, 0.04, None, 0.09, 0.09)
    d = diagnose(errors, sizes={"train": 8000, "dev": 2000, "test": 2000})
    assert [g.name for g in d.gaps] == ["avoidable_bias", JOINT_GAP, "dev_overfitting"]
    joint = d.gap(JOINT_GAP)
    assert joint.value == pytest.approx(0.05)
    assert joint.interval == pytest.approx(newcombe(0.09, 2000, 0.04, 8000))
    assert d.verdict == JOINT_GAP and d.problems == (JOINT_GAP, "avoidable_bias")
    assert d.intervals["train_dev"] is None
    assert any("cannot be split into variance and data mismatch" in n for n in d.notes)


def test_without_train_dev_a_small_joint_gap_is_within_tolerance_and_the_document_says_not_measured():
    report = dlexp.diagnose(train=0.05, dev=0.053, test=0.052, human=0.045)
    assert report.verdict == "within_tolerance"
    doc = report.document()
    assert doc["errors"]["train_dev"] is None and set(doc["gaps"]) == {"avoidable_bias", JOINT_GAP, "dev_overfitting"}
    assert "error/train_dev" not in report.metrics() and "gap/variance" not in report.metrics()
    assert report.metrics()[f"gap/{JOINT_GAP}"] == pytest.approx(0.003)
    text = markdown.diagnosis(doc)
    assert f"| gap/{JOINT_GAP} | 0.30%" in text and "| error/train_dev | –" in text


def test_without_train_dev_an_uncertain_joint_gap_says_which_split_to_grow():
    d = diagnose(SplitErrors(0.01, 0.02, None, 0.05, 0.05), sizes={"train": 800, "dev": 200, "test": 200})
    assert d.verdict == "inconclusive" and d.resolve["gap"] == JOINT_GAP
    assert set(d.resolve["more"]) <= {"train", "dev"} and d.resolve["more"]


def test_what_if_without_train_dev_at_the_command_line_judges_one_gap():
    from typer.testing import CliRunner

    from dlexp.cli import app

    result = CliRunner().invoke(app, ["diagnose", "--human", "0.01", "--train", "0.02", "--dev", "0.08", "--test",
                                      "0.08", "--n-train", "8000", "--n-dev", "2000", "--n-test", "2000", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["verdict"] == JOINT_GAP and doc["errors"]["train_dev"] is None
    assert doc["intervals"][JOINT_GAP] == pytest.approx(newcombe(0.08, 2000, 0.02, 8000))


def test_two_runs_without_train_dev_are_compared_on_their_one_gap():
    from dlexp.diagnosis.compare import compare

    sizes = {"train": 8000, "dev": 2000, "test": 2000}
    a = dlexp.diagnose(train=0.02, dev=0.08, test=0.08, human=0.01, sizes=sizes).document()
    b = dlexp.diagnose(train=0.03, dev=0.06, test=0.07, human=0.01, sizes=sizes).document()
    joint = compare(a, b).gaps[JOINT_GAP]
    assert joint.diff == pytest.approx(-0.03) and joint.change == "lowered"
    with_td = dlexp.diagnose(train=0.02, train_dev=0.03, dev=0.08, test=0.08, human=0.01).document()
    assert JOINT_GAP not in compare(with_td, with_td).gaps  # runs with train-dev: the four gaps only
