"""The pure diagnosis: four split errors against a human-level baseline -> gaps -> verdict -> actions."""

from __future__ import annotations

import json
import math
import shlex

import pytest

from dlexp.diagnosis import (
    GAPS,
    VERDICTS,
    Report,
    SplitErrors,
    check_error,
    diagnose,
    merge_overrides,
    recommend,
)

# human, train, train_dev, dev, test -> verdict, problems (largest first)
CASES = {
    # Andrew Ng's classic cases (dev = test)
    "classic-avoidable-bias": ((0.01, 0.15, 0.155, 0.16, 0.16), "avoidable_bias", ("avoidable_bias",)),
    # dev - train_dev is exactly the tolerance here (0.11 - 0.10), so it counts as a problem too
    "classic-variance": ((0.01, 0.015, 0.10, 0.11, 0.11), "variance", ("variance", "data_mismatch")),
    "classic-data-mismatch": ((0.01, 0.011, 0.015, 0.10, 0.10), "data_mismatch", ("data_mismatch",)),
    "classic-bias-and-variance": ((0.01, 0.15, 0.30, 0.30, 0.30), "variance", ("variance", "avoidable_bias")),
    # test worse than dev by 2 points
    "dev-overfitting": ((0.01, 0.015, 0.02, 0.02, 0.04), "dev_overfitting", ("dev_overfitting",)),
    "all-gaps-small": ((0.01, 0.015, 0.02, 0.025, 0.03), "within_tolerance", ()),
    "perfect": ((0.0, 0.0, 0.0, 0.0, 0.0), "within_tolerance", ()),
    # tolerance boundary: a gap of exactly 0.01 is a problem, 0.0099 is not
    "boundary-exact": ((0.01, 0.02, 0.02, 0.02, 0.02), "avoidable_bias", ("avoidable_bias",)),
    "boundary-float": ((0.15, 0.16, 0.165, 0.17, 0.175), "avoidable_bias", ("avoidable_bias",)),
    "boundary-below": ((0.01, 0.0199, 0.0199, 0.0199, 0.0199), "within_tolerance", ()),
    # the what-if example of the issue: 0.07 then three gaps of (about) 0.01
    "what-if-example": ((0.01, 0.08, 0.09, 0.10, 0.11), "avoidable_bias",
                        ("avoidable_bias", "data_mismatch", "variance", "dev_overfitting")),
    # negative gaps (train-dev better than train, test better than dev) are never problems
    "negative-gaps": ((0.02, 0.20, 0.10, 0.10, 0.05), "avoidable_bias", ("avoidable_bias",)),
}


@pytest.mark.parametrize("errors, verdict, problems", CASES.values(), ids=CASES.keys())
def test_verdict_table(errors, verdict, problems):
    d = diagnose(SplitErrors(*errors))
    assert d.verdict == verdict
    assert d.problems == problems
    assert d.verdict in VERDICTS


@pytest.mark.parametrize("errors", [c[0] for c in CASES.values()], ids=CASES.keys())
def test_gaps_are_the_differences_of_adjacent_levels(errors):
    human, train, train_dev, dev, test = errors
    d = diagnose(SplitErrors(*errors))
    assert [g.name for g in d.gaps] == list(GAPS)
    assert d.gap("avoidable_bias").value == pytest.approx(train - human)
    assert d.gap("variance").value == pytest.approx(train_dev - train)
    assert d.gap("data_mismatch").value == pytest.approx(dev - train_dev)
    assert d.gap("dev_overfitting").value == pytest.approx(test - dev)
    # a gap is flagged exactly when it is among the problems
    assert {g.name for g in d.gaps if g.problem} == set(d.problems)


def test_problems_are_sorted_largest_first():
    d = diagnose(SplitErrors(human=0.0, train=0.03, train_dev=0.08, dev=0.10, test=0.20))
    values = [d.gap(p).value for p in d.problems]
    assert d.problems == ("dev_overfitting", "variance", "avoidable_bias", "data_mismatch")
    assert values == sorted(values, reverse=True)


def test_tolerance_is_a_parameter():
    errors = SplitErrors(0.01, 0.05, 0.06, 0.07, 0.08)  # gaps 0.04, 0.01, 0.01, 0.01
    default = diagnose(errors)
    assert default.problems[0] == "avoidable_bias" and len(default.problems) == 4
    assert diagnose(errors, tolerance=0.05).verdict == "within_tolerance"
    assert diagnose(errors, tolerance=0.04).problems == ("avoidable_bias",)
    assert diagnose(errors, tolerance=0.05).tolerance == 0.05


def test_negative_tolerance_is_rejected():
    with pytest.raises(ValueError, match="tolerance"):
        diagnose(SplitErrors(0.01, 0.02, 0.03, 0.04, 0.05), tolerance=-0.01)


def test_diverged_overrides_the_gaps_and_says_where():
    errors = SplitErrors(0.01, 0.70, 0.72, 0.74, 0.75)
    d = diagnose(errors, diverged_at=17)
    assert d.verdict == "diverged"
    assert d.diverged_at == 17
    assert d.problems[0] == "avoidable_bias"  # the gaps are still measured and ranked
    assert any("non-finite" in n and "17" in n for n in d.notes)
    assert diagnose(errors, diverged=True).verdict == "diverged"


def test_train_below_human_says_so():
    d = diagnose(SplitErrors(human=0.05, train=0.03, train_dev=0.04, dev=0.045, test=0.045))
    assert d.gap("avoidable_bias").value == pytest.approx(-0.02)
    assert not d.gap("avoidable_bias").problem
    assert d.verdict == "variance"
    assert len(d.notes) == 1
    note = d.notes[0].lower()
    assert "below the human-level" in note and "bayes" in note


def test_no_note_when_train_is_above_human():
    assert diagnose(SplitErrors(0.01, 0.15, 0.155, 0.16, 0.16)).notes == ()


@pytest.mark.parametrize("value", [-0.01, 1.01, 1.5, float("nan"), float("inf"), "0.1", None])
def test_check_error_rejects_what_is_not_a_rate(value):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_error("human", value)


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 1, 1.0])
def test_check_error_accepts_rates(value):
    assert check_error("human", value) is None
    d = diagnose(SplitErrors(value, value, value, value, value))  # a rate at either end is diagnosed as given
    assert d.errors.as_dict() == dict.fromkeys(("human", "train", "train_dev", "dev", "test"), value)
    assert all(g.value == 0 for g in d.gaps)


# --------------------------------------------------------------------------------------------------
# recommend: actions computed from the run's config, each with the exact next command


def config(**changes) -> dict:
    """A resolved run config, as plain mappings, like the one `dlexp train` logs."""
    cfg = {
        "seed": 0,
        "data": {"name": "synthetic", "n_train": 1000, "n_train_dev": 200, "n_dev": 300, "n_test": 300,
                 "label_noise": 0.05, "shift": 0.0, "target_fraction": 0.0},
        "model": {"name": "mlp", "hidden": [64, 32], "dropout": 0.0, "activation": "relu"},
        "optimizer": {"name": "adam", "lr": 0.003, "weight_decay": 0.0, "grad_clip": None},
        "trainer": {"max_epochs": 10},
        "baseline": {"human_error": "auto"},
        "diagnosis": {"tolerance": 0.01},
        "early_stopping": {"patience": 0, "min_delta": 0.0},
    }
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        cfg[section][key] = value
    return cfg


BIAS = SplitErrors(0.01, 0.15, 0.155, 0.16, 0.16)
VARIANCE = SplitErrors(0.01, 0.015, 0.10, 0.105, 0.105)
MISMATCH = SplitErrors(0.01, 0.011, 0.015, 0.10, 0.10)
DEV_OVERFIT = SplitErrors(0.01, 0.015, 0.02, 0.02, 0.05)


def argv(command: str) -> list[str]:
    """The overrides of a `dlexp train ...` command, as the shell would pass them."""
    words = shlex.split(command)
    assert words[:2] == ["dlexp", "train"], command
    return words[2:]


def commands(actions, problem=None) -> list[list[str]]:
    return [argv(a.command) for a in actions if a.command and (problem is None or a.problem == problem)]


def test_bias_doubles_the_hidden_layers_from_the_config():
    actions = recommend(diagnose(BIAS), config())
    assert ["model.hidden=[128,64]"] in commands(actions, "avoidable_bias")
    # and it is the config's value that is doubled, not a fixed string
    actions = recommend(diagnose(BIAS), config(model__hidden=[10]))
    assert ["model.hidden=[20]"] in commands(actions, "avoidable_bias")


def test_bias_trains_longer_than_the_config():
    assert ["trainer.max_epochs=20"] in commands(recommend(diagnose(BIAS), config()), "avoidable_bias")
    assert ["trainer.max_epochs=6"] in commands(recommend(diagnose(BIAS), config(trainer__max_epochs=3)))


def test_bias_lowers_regularization_only_when_some_is_on():
    none_on = [o for c in commands(recommend(diagnose(BIAS), config())) for o in c]
    assert not any(o.startswith(("model.dropout=", "optimizer.weight_decay=")) for o in none_on)
    actions = recommend(diagnose(BIAS), config(model__dropout=0.4, optimizer__weight_decay=0.01))
    cmds = commands(actions, "avoidable_bias")
    assert ["model.dropout=0.2"] in cmds
    assert ["optimizer.weight_decay=0"] in cmds


def test_bias_with_sgd_suggests_adam():
    actions = recommend(diagnose(BIAS), config(optimizer__name="sgd", optimizer__lr=0.05))
    assert ["optimizer=adam"] in commands(actions, "avoidable_bias")


def test_bias_with_adam_sweeps_the_learning_rate_around_its_value():
    actions = recommend(diagnose(BIAS), config(optimizer__lr=0.01))
    sweep = [a.command for a in actions if "optimizer.lr=" in (a.command or "")]
    assert len(sweep) == 1
    words = shlex.split(sweep[0])
    assert words[:3] == ["dlexp", "train", "-m"]
    lrs = [float(v) for v in words[-1].split("=", 1)[1].split(",")]
    assert 0.01 in lrs and min(lrs) < 0.01 < max(lrs)


def test_bias_on_a_linear_model_suggests_an_mlp():
    cfg = config()
    cfg["model"] = {"name": "logistic"}
    cmds = commands(recommend(diagnose(BIAS), cfg, overrides=["model=logistic"]), "avoidable_bias")
    assert ["model=mlp"] in cmds


def test_variance_raises_dropout_from_the_config():
    actions = recommend(diagnose(VARIANCE), config(model__dropout=0.3))
    assert ["model.dropout=0.5"] in commands(actions, "variance")
    actions = recommend(diagnose(VARIANCE), config(model__dropout=0.0))
    assert ["model.dropout=0.2"] in commands(actions, "variance")


def test_variance_doubles_the_training_set_when_the_source_can_draw_more():
    actions = recommend(diagnose(VARIANCE), config(data__n_train=1000))
    assert ["data.n_train=2000"] in commands(actions, "variance")
    digits = config()
    digits["data"] = {"name": "digits", "n_train": None, "train_dev_fraction": 0.1, "dev_fraction": 0.15,
                      "test_fraction": 0.15}
    flat = [o for c in commands(recommend(diagnose(VARIANCE), digits)) for o in c]
    assert not any(o.startswith("data.n_train=") for o in flat)


def test_variance_weight_decay_early_stopping_and_smaller_model():
    cmds = commands(recommend(diagnose(VARIANCE), config(optimizer__weight_decay=0.001)), "variance")
    assert ["optimizer.weight_decay=0.01"] in cmds
    assert ["early_stopping.patience=3"] in cmds
    assert ["model.hidden=[32,16]"] in cmds
    # early stopping already on: not suggested again
    with_es = config()
    with_es["early_stopping"]["patience"] = 5
    assert not any(o.startswith("early_stopping.")
                   for c in commands(recommend(diagnose(VARIANCE), with_es)) for o in c)


def test_data_mismatch_moves_target_data_into_training():
    actions = recommend(diagnose(MISMATCH), config(data__shift=1.5, data__target_fraction=0.0))
    assert ["data.target_fraction=0.2"] in commands(actions, "data_mismatch")
    assert any(a.problem == "data_mismatch" and a.command is None and "error analysis" in a.action.lower()
               for a in actions)


def test_data_mismatch_reweights_training_rows_like_dev_up_to_the_full_ratio():
    shifted = config(data__shift=1.5, data__target_fraction=0.0, data__reweight=0.0)
    assert ["data.reweight=0.5"] in commands(recommend(diagnose(MISMATCH), shifted), "data_mismatch")
    shifted["data"]["reweight"] = 0.5
    assert ["data.reweight=1"] in commands(recommend(diagnose(MISMATCH), shifted), "data_mismatch")
    shifted["data"]["reweight"] = 1.0  # the full ratio already: nothing more to reweight
    assert not any(o.startswith("data.reweight") for c in commands(recommend(diagnose(MISMATCH), shifted)) for o in c)
    # dev/test drawn like training: no shift to reweight for
    same = config(data__shift=0.0, data__reweight=0.0)
    assert not any(o.startswith("data.reweight") for c in commands(recommend(diagnose(MISMATCH), same)) for o in c)


def test_data_mismatch_of_images_synthesises_training_images_like_dev_up_to_a_copy_of_each():
    images = {"name": "images", "path": "shapes/", "dev_path": "served/", "synthesize": 0.0, "augment": False}
    cfg = config()
    cfg["data"] = dict(images)
    assert ["data.synthesize=0.5"] in commands(recommend(diagnose(MISMATCH), cfg), "data_mismatch")
    cfg["data"]["synthesize"] = 0.5
    assert ["data.synthesize=1"] in commands(recommend(diagnose(MISMATCH), cfg), "data_mismatch")
    cfg["data"]["synthesize"] = 1.0  # a copy of every training image already
    assert not any(o.startswith("data.synthesize") for c in commands(recommend(diagnose(MISMATCH), cfg)) for o in c)
    # no dev folder: dev is carved out of the training images, nothing to make training like
    cfg["data"] = dict(images, dev_path=None)
    assert not any(o.startswith("data.synthesize") for c in commands(recommend(diagnose(MISMATCH), cfg)) for o in c)


def test_dev_overfitting_grows_the_dev_set_and_reseeds():
    cmds = commands(recommend(diagnose(DEV_OVERFIT), config(data__n_dev=300)), "dev_overfitting")
    assert ["data.n_dev=600"] in cmds
    assert ["seed=1"] in cmds


def test_diverged_actions_come_first_and_lower_the_learning_rate():
    d = diagnose(BIAS, diverged_at=3)
    actions = recommend(d, config(optimizer__lr=0.003))
    assert actions[0].problem == "diverged"
    assert argv(actions[0].command) == ["optimizer.lr=0.0003"]
    assert ["optimizer.grad_clip=1.0"] in commands(actions, "diverged")


def test_actions_follow_the_problems_in_order():
    d = diagnose(SplitErrors(0.01, 0.15, 0.30, 0.30, 0.30))  # variance first, then avoidable_bias
    actions = recommend(d, config())
    order = [a.problem for a in actions]
    assert order == sorted(order, key=("variance", "avoidable_bias").index)
    assert set(order) == {"variance", "avoidable_bias"}
    for a in actions:
        assert a.action and a.why and "\n" not in a.why


def test_within_tolerance_has_no_actions():
    assert recommend(diagnose(SplitErrors(0.01, 0.015, 0.02, 0.025, 0.03)), config()) == ()


def test_base_overrides_are_repeated_and_a_replaced_key_appears_once():
    base = ["seed=3", "model.hidden=[64,32]", "data.n_train=1000"]
    actions = recommend(diagnose(BIAS), config(), overrides=base)
    bigger = next(a for a in actions if "model.hidden=[128,64]" in (a.command or ""))
    assert argv(bigger.command) == ["seed=3", "data.n_train=1000", "model.hidden=[128,64]"]
    for a in actions:
        if a.command is None:
            continue
        words = [w for w in argv(a.command) if w != "-m"]
        keys = [w.split("=", 1)[0] for w in words]
        assert len(keys) == len(set(keys)), a.command
        assert "seed=3" in words and "data.n_train=1000" in words, a.command


def test_commands_survive_the_shell():
    actions = recommend(diagnose(BIAS), config(), overrides=["model.hidden=[64,32]"])
    bigger = next(a for a in actions if "[128,64]" in (a.command or ""))
    # brackets are quoted, so a shell does not glob them
    assert "'model.hidden=[128,64]'" in bigger.command


@pytest.mark.parametrize("base, new, expected", [
    (["model.hidden=[64]", "seed=1"], ["model.hidden=[128]"], ["seed=1", "model.hidden=[128]"]),
    (["a=1", "b=2"], ["c=3"], ["a=1", "b=2", "c=3"]),
    (["model=logistic", "model.dropout=0.1", "seed=2"], ["model=mlp"], ["seed=2", "model=mlp"]),
    (["+extra=1", "seed=2"], ["extra=5"], ["seed=2", "extra=5"]),
    ([], ["x=1"], ["x=1"]),
    (["optimizer=sgd", "optimizer.lr=0.1"], ["optimizer.lr=0.01"], ["optimizer=sgd", "optimizer.lr=0.01"]),
])
def test_merge_overrides(base, new, expected):
    assert merge_overrides(base, new) == expected


@pytest.mark.parametrize("errors", [BIAS, VARIANCE, MISMATCH, DEV_OVERFIT], ids=["bias", "var", "mis", "dev"])
def test_what_if_actions_have_no_command(errors):
    d = diagnose(errors)
    actions = recommend(d, None)
    assert actions
    assert all(a.command is None for a in actions)
    assert {a.problem for a in actions} == set(d.problems)


# --------------------------------------------------------------------------------------------------
# the JSON document


def test_report_document_has_the_issue_keys():
    d = diagnose(SplitErrors(0.01, 0.15, 0.30, 0.30, 0.31))
    sizes = {"train": 1000, "train_dev": 200, "dev": 300, "test": 300}
    report = Report(d, recommend(d, config(), overrides=["seed=0"]), run_id="abc123", sizes=sizes)
    doc = json.loads(json.dumps(report.document()))  # JSON-serialisable, same after a round trip
    assert {"run_id", "task", "metric", "errors", "sizes", "gaps", "verdict", "problems", "actions"} <= set(doc)
    assert doc["run_id"] == "abc123"
    assert doc["task"] == "classification" and doc["metric"] == "error_rate"
    assert doc["errors"] == {"human": 0.01, "train": 0.15, "train_dev": 0.30, "dev": 0.30, "test": 0.31}
    assert doc["sizes"] == sizes
    assert set(doc["gaps"]) == set(GAPS)
    assert doc["gaps"]["variance"] == pytest.approx(0.15)
    assert doc["verdict"] == "variance"
    assert doc["problems"] == ["variance", "avoidable_bias", "dev_overfitting"]
    assert doc["actions"]
    for a in doc["actions"]:
        assert {"problem", "action", "why", "command"} <= set(a)
        assert a["problem"] in doc["problems"]
        assert a["command"] is None or a["command"].startswith("dlexp train")


def test_report_metrics_and_tags_use_the_document_names():
    d = diagnose(SplitErrors(0.01, 0.15, 0.30, 0.30, 0.30))
    report = Report(d, ())
    metrics = report.metrics()
    assert set(metrics) == {f"error/{k}" for k in ("human", "train", "train_dev", "dev", "test")} | \
        {f"gap/{g}" for g in GAPS}
    assert metrics["gap/variance"] == pytest.approx(0.15)
    assert all(math.isfinite(v) for v in metrics.values())
    tags = report.tags()
    assert tags["dlexp.verdict"] == "variance"
    assert tags["dlexp.problems"] == "variance,avoidable_bias"
    assert (tags["dlexp.task"], tags["dlexp.metric"]) == ("classification", "error_rate")


# --------------------------------------------------------------------------------------------------
# the examples in the docstrings are part of the documentation: the README's test command runs them all


def test_the_test_command_runs_every_docstring_example():
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    options = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "dlexp" in options["testpaths"] and "--doctest-modules" in options["addopts"].split()
