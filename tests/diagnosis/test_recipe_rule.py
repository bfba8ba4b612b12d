"""The recipe's acceptance rule and round planning, by table: comparison documents in, decisions out."""

from __future__ import annotations

import shlex

import pytest

from dlexp.diagnosis.recipe import (Candidate, Decision, Helped, again, best, bold, candidates, decide, family,
                                    follow_ups, next_or_rest, next_round, same_data, still_falling, stop_reason)


def comparison(dev, *, gaps=None, test=None):
    """A comparison document with a dev row (diff, interval[, p]) and gap changes {name: (diff, interval)}."""
    diff, interval, *p = dev
    splits = {"dev": {"diff": diff, "interval": interval, "p_value": p[0] if p else None, "method": "paired"}}
    if test is not None:
        splits["test"] = {"diff": test, "interval": [test - 0.01, test + 0.01], "p_value": 0.0, "method": "paired"}
    return {"splits": splits,
            "gaps": {g: {"diff": d, "interval": iv} for g, (d, iv) in (gaps or {}).items()}}


# dev (diff, interval[, p]), gap changes, target -> accepted, improved, raised
CASES = {
    "clear-drop": ((-0.15, [-0.20, -0.10]), {}, "avoidable_bias", True, True, ()),
    "drop-just-significant": ((-0.03, [-0.06, -0.0001]), {}, "avoidable_bias", True, True, ()),
    "within-noise": ((-0.02, [-0.05, 0.01]), {}, "avoidable_bias", False, False, ()),
    "interval-touches-zero": ((-0.03, [-0.06, 0.0]), {}, "avoidable_bias", False, False, ()),
    "no-change": ((0.0, [0.0, 0.0]), {}, "avoidable_bias", False, False, ()),
    "worse": ((0.05, [0.02, 0.08]), {}, "avoidable_bias", False, False, ()),
    # a bias fix that makes variance a confirmed new problem (the rise's interval clears the tolerance):
    # the dev error, the sum of the gaps, still dropped significantly, so it is progress, accepted, and the
    # raised gap is named for the rounds that follow
    "raises-variance": ((-0.10, [-0.14, -0.06]), {"variance": (0.06, [0.03, 0.09])}, "avoidable_bias",
                        True, True, ("variance",)),
    # variance rose, but its interval does not confirm a rise of the tolerance: noise, accepted
    "variance-noise": ((-0.10, [-0.14, -0.06]), {"variance": (0.03, [-0.02, 0.08])}, "avoidable_bias",
                       True, True, ()),
    "rise-exactly-tolerance": ((-0.10, [-0.14, -0.06]), {"data_mismatch": (0.02, [0.01, 0.03])}, "variance",
                               True, True, ("data_mismatch",)),
    # a raised gap never buys acceptance of a change within noise
    "raises-variance-within-noise": ((-0.02, [-0.05, 0.01]), {"variance": (0.06, [0.03, 0.09])},
                                     "avoidable_bias", False, False, ("variance",)),
    # the target gap itself moving is what the candidate is for
    "target-exempt": ((-0.10, [-0.14, -0.06]), {"variance": (0.05, [0.03, 0.07])}, "variance", True, True, ()),
    # the test split and dev_overfitting are never read while selecting
    "test-ignored": ((-0.10, [-0.14, -0.06]), {"dev_overfitting": (0.20, [0.15, 0.25])}, "avoidable_bias",
                     True, True, ()),
    # no interval: a p-value decides, and a gap change is held to the tolerance on its estimate
    "p-value-only": ((-0.04, None, 0.001), {"variance": (0.005, None)}, "avoidable_bias", True, True, ()),
    "p-value-not-significant": ((-0.04, None, 0.2), {}, "avoidable_bias", False, False, ()),
    "estimate-only-rise": ((-0.04, None, 0.001), {"variance": (0.02, None)}, "avoidable_bias",
                           True, True, ("variance",)),
    "nothing-known": ((-0.04, None), {}, "avoidable_bias", False, False, ()),
}


@pytest.mark.parametrize("dev, gaps, target, accepted, improved, raised", CASES.values(), ids=CASES.keys())
def test_acceptance_table(dev, gaps, target, accepted, improved, raised):
    d = decide(comparison(dev, gaps=gaps, test=-0.5), tolerance=0.01, target=target)
    assert (d.accepted, d.improved, d.raised) == (accepted, improved, raised)
    assert d.reason.startswith("dev error")
    assert ("past the tolerance" in d.reason) == bool(improved and raised)
    if improved and raised:
        assert "problem" in d.reason and raised[0] in d.reason  # the trail names the next problem


def test_a_run_against_itself_is_refused():
    d = decide(comparison((0.0, [-0.009, 0.009], 1.0), gaps={g: (0.0, [-0.02, 0.02]) for g in
                                                         ("avoidable_bias", "variance", "data_mismatch")}),
               tolerance=0.01, target="avoidable_bias")
    assert not d.accepted and "within noise" in d.reason


def test_best_takes_the_largest_accepted_drop_and_ties_go_first():
    ok, no = Decision(True, True, (), ""), Decision(False, False, ("variance",), "")
    assert best([(ok, -0.05), (no, -0.20), (ok, -0.08)]) == 2
    assert best([(ok, -0.05), (ok, -0.05)]) == 0
    assert best([(no, -0.2), (no, -0.1)]) is None
    assert best([]) is None


class Act:
    def __init__(self, problem, action, command):
        self.problem, self.action, self.command, self.why = problem, action, command, ""


def test_candidates_skip_untrainable_and_expand_sweeps():
    acts = [Act("inconclusive", "Measure more", "dlexp train seed=1 data.n_dev=4000"),
            Act("avoidable_bias", "Bigger model", "dlexp train seed=1 'model.hidden=[256,256]'"),
            Act("avoidable_bias", "Tune the learning rate", "dlexp train -m seed=1 optimizer.lr=0.0003,0.001,0.003"),
            Act("data_mismatch", "Error analysis", None)]
    got = candidates(acts, {"optimizer.lr": 0.001}, base=["seed=1"])
    assert [c.overrides for c in got] == [("model.hidden=[256,256]",), ("optimizer.lr=0.0003",),
                                          ("optimizer.lr=0.003",)]
    assert got[1].command == "dlexp train seed=1 optimizer.lr=0.0003"
    assert got[0].problem == "avoidable_bias" and got[2].action.endswith("optimizer.lr=0.003")


def cand(problem, action, *overrides):
    return Candidate(problem, action, overrides, " ".join(["dlexp", "train", *overrides]))


def test_rounds_take_the_largest_problem_first_then_move_on():
    pool = [cand("variance", n, f"{n}=1") for n in ("v1", "v2", "v3")] + [cand("data_mismatch", "m1", "m1=1")]
    assert next_round(pool, set(), 2) == ("variance", pool[:2])
    assert next_round(pool, {"v1=1", "v2=1"}, 2) == ("variance", pool[2:3])  # the next actions of the same problem
    assert next_round(pool, {"v1=1", "v2=1", "v3=1"}, 2) == ("data_mismatch", pool[3:])  # then the next problem
    assert next_round(pool, {"v1=1", "v2=1", "v3=1", "m1=1"}, 2) == (None, [])


# --- follow what works: the accepted action again, by the step that helped; the other helpers on top

BASE = ["experiment=underfit", "model=mlp"]
# what was accepted (overrides, the incumbent's values before) and the new incumbent's values -> the next step
AGAIN = {
    "double-the-width-again": (("model.hidden=[256,256]",), {"model.hidden": [128, 128]},
                               {"model.hidden": [256, 256]}, "model.hidden=[512,512]"),
    "double-the-epochs-again": (("trainer.max_epochs=10",), {"trainer.max_epochs": 5},
                                {"trainer.max_epochs": 10}, "trainer.max_epochs=20"),
    "lr-up-3x-again": (("optimizer.lr=0.009",), {"optimizer.lr": 0.003}, {"optimizer.lr": 0.009},
                       "optimizer.lr=0.027"),
    # the step adapts: the ratio that helped, here 0.3x down
    "lr-down-by-the-ratio-that-helped": (("optimizer.lr=0.0009",), {"optimizer.lr": 0.003},
                                         {"optimizer.lr": 0.0009}, "optimizer.lr=0.00027"),
    "more-data-again": (("data.n_train=4000",), {"data.n_train": 2000}, {"data.n_train": 4000},
                        "data.n_train=8000"),
    "a-share-stops-at-0.9": (("model.dropout=0.6",), {"model.dropout": 0.2}, {"model.dropout": 0.6},
                             "model.dropout=0.9"),
    # a share moves by the same amount again, from 0 too: dropout 0 -> 0.2 -> 0.4 (not x2 from 0.2 to 0.8)
    "dropout-from-0-again": (("model.dropout=0.2",), {"model.dropout": 0.0}, {"model.dropout": 0.2},
                             "model.dropout=0.4"),
    # reweighting by the density ratio: 0 -> 0.5 -> 1, the full ratio, and no further
    "reweight-to-the-full-ratio": (("data.reweight=0.5",), {"data.reweight": 0.0}, {"data.reweight": 0.5},
                                   "data.reweight=1"),
}


@pytest.mark.parametrize("overrides, was, now, expected", AGAIN.values(), ids=AGAIN.keys())
def test_an_accepted_action_is_tried_again_by_the_step_that_helped(overrides, was, now, expected):
    h = Helped("avoidable_bias", "Some action", overrides, was, True)
    pool = [cand("avoidable_bias", "Other architecture: one more hidden layer", "model.hidden=[256,256,256]")]
    nxt = follow_ups([h], now, BASE + list(overrides), pool)
    assert [c.overrides for c in nxt] == [(expected,)]
    assert shlex.split(nxt[0].command) == ["dlexp", "train", *BASE, expected]
    # before the incumbent's other actions of that problem
    assert next_round(pool, set(), 2, nxt)[1] == [nxt[0], pool[0]]


def test_an_accepted_step_that_is_no_number_is_followed_by_the_same_kind_of_action():
    # logistic -> mlp was accepted: "bigger model" again is the mlp's own bigger model (double the width)
    h = Helped("avoidable_bias", "Bigger model: a multi-layer perceptron instead of a linear model", ("model=mlp",),
               {"model.name": "logistic"}, True)
    longer = cand("avoidable_bias", "Train longer", "trainer.max_epochs=10")
    wider = cand("avoidable_bias", "Bigger model: double the width of every hidden layer", "model.hidden=[256,256]")
    assert follow_ups([h], {"model.name": "mlp"}, ["model=mlp"], [longer, wider]) == [wider]
    assert next_round([longer, wider], set(), 1, [wider]) == ("avoidable_bias", [wider])


def test_two_actions_that_each_helped_are_combined():
    # round 1 from a 5-epoch mlp of width 128: wider (accepted, the larger drop) and longer both lowered dev
    wider = Helped("avoidable_bias", "Bigger model: double the width of every hidden layer",
                   ("model.hidden=[256,256]",), {"model.hidden": [128, 128]}, True)
    longer = Helped("avoidable_bias", "Train longer", ("trainer.max_epochs=10",), {"trainer.max_epochs": 5}, False)
    noisy = cand("avoidable_bias", "Tune the learning rate: optimizer.lr=0.003", "optimizer.lr=0.003")
    now = {"model.hidden": [256, 256], "trainer.max_epochs": 5}
    nxt = follow_ups([wider, longer], now, ["model.hidden=[256,256]"], [noisy])
    assert [c.overrides for c in nxt] == [("model.hidden=[512,512]",), ("trainer.max_epochs=10",)]
    assert nxt[1].command == "dlexp train 'model.hidden=[256,256]' trainer.max_epochs=10"  # bigger and longer
    assert family(nxt[1].action) == "train longer" and family(nxt[0].action) == "bigger model"
    assert next_round([noisy], set(), 2, nxt)[1] == nxt  # both before the incumbent's other actions
    # once tried, the round goes on with the incumbent's own actions
    assert next_round([noisy], {c.key for c in nxt}, 2, nxt)[1] == [noisy]


@pytest.mark.parametrize("verdict, left, budget_left, expected", [
    ("within_tolerance", 3, 5, "within_tolerance"), ("inconclusive", 3, 5, "inconclusive"),
    ("avoidable_bias", 0, 5, "nothing_helps"), ("avoidable_bias", 3, 0, "budget"),
    ("diverged", 2, 1, None), ("variance", 1, 1, None)])
def test_stop_reasons(verdict, left, budget_left, expected):
    assert stop_reason(verdict, left=left, budget_left=budget_left) == expected


# --- the step grows when its repeat wins again; a bold step repeats its numeric moves

def test_a_repeat_that_won_again_takes_a_larger_step():
    # 5 -> 10 won, then "again" 10 -> 20 won too: the next step is x4 (20 -> 80), not x2
    h = Helped("avoidable_bias", "Train longer again: trainer.max_epochs=20", ("trainer.max_epochs=20",),
               {"trainer.max_epochs": 10}, True)
    assert again(h, {"trainer.max_epochs": 20}, ["trainer.max_epochs=20"]).overrides == ("trainer.max_epochs=80",)
    # that x4 won again: x4 once more (80 -> 320), not the grown ratio x16 (80 -> 1280)
    h = Helped("variance", "Bold step again: model.dropout=0.4 trainer.max_epochs=80",
               ("model.dropout=0.4", "trainer.max_epochs=80"), {"model.dropout": 0.2, "trainer.max_epochs": 20}, True)
    assert again(h, {"model.dropout": 0.4, "trainer.max_epochs": 80}, []).overrides == (
        "model.dropout=0.6", "trainer.max_epochs=320")
    # a learning rate does not grow: the same ratio again
    h = Helped("avoidable_bias", "Tune the learning rate again: optimizer.lr=0.009", ("optimizer.lr=0.009",),
               {"optimizer.lr": 0.003}, True)
    assert again(h, {"optimizer.lr": 0.009}, []).overrides == ("optimizer.lr=0.027",)


def test_a_bold_step_that_won_repeats_its_numeric_moves():
    h = Helped("avoidable_bias", "Bold step: bigger model + train longer + tune the learning rate: model=mlp "
               "trainer.max_epochs=20 optimizer.lr=0.009", ("model=mlp", "trainer.max_epochs=20", "optimizer.lr=0.009"),
               {"trainer.max_epochs": 5, "optimizer.lr": 0.003}, True)
    got = again(h, {"trainer.max_epochs": 20, "optimizer.lr": 0.009}, ["model=mlp", "trainer.max_epochs=20"])
    assert got.overrides == ("trainer.max_epochs=80", "optimizer.lr=0.027")  # model=mlp is taken already
    assert family(got.action) == "bold step"


# --- bold steps: a gap far from the tolerance gets one candidate taking the problem's first moves together

BIAS_POOL = [cand("avoidable_bias", "Bigger model: a multi-layer perceptron instead of a linear model", "model=mlp"),
             cand("avoidable_bias", "Train longer", "trainer.max_epochs=10"),
             cand("avoidable_bias", "Tune the learning rate: sweep around the current value: optimizer.lr=0.0009",
                  "optimizer.lr=0.0009"),
             cand("avoidable_bias", "Tune the learning rate: sweep around the current value: optimizer.lr=0.009",
                  "optimizer.lr=0.009"),
             cand("variance", "Regularization: raise dropout", "model.dropout=0.2"),
             cand("variance", "Regularization: weight decay", "optimizer.weight_decay=0.001"),
             cand("variance", "Early stopping on the dev error", "early_stopping.patience=3")]
NOW = {"trainer.max_epochs": 5, "optimizer.lr": 0.003}
DEEPER = ("model.hidden=[128,128,128]",)
# problem, gap (tolerance 0.01), dev curve still falling, the model's depth step -> the bold step's overrides
# (None: no bold step)
BOLD_CASES = {
    # 65% above the human level: a network, trained 4x longer (the square of x2), the higher learning rate
    "bias-far": ("avoidable_bias", 0.65, False, (), ("model=mlp", "trainer.max_epochs=20", "optimizer.lr=0.009")),
    "bias-at-10x": ("avoidable_bias", 0.10, False, (), ("model=mlp", "trainer.max_epochs=20", "optimizer.lr=0.009")),
    "bias-near": ("avoidable_bias", 0.09, False, (), None),  # single steps only
    # the depth step is variance's: a bias bold step does not take it
    "bias-far-deeper": ("avoidable_bias", 0.65, False, DEEPER, ("model=mlp", "trainer.max_epochs=20", "optimizer.lr=0.009")),
    "variance-far": ("variance", 0.22, False, (), ("model.dropout=0.2", "optimizer.weight_decay=0.001")),
    # a bigger network, regularized: one more layer with dropout and weight decay
    "variance-far-deeper": ("variance", 0.22, False, DEEPER,
                            DEEPER + ("model.dropout=0.2", "optimizer.weight_decay=0.001")),
    # the dev error still falling at the last epoch: twice the epochs too
    "variance-far-still-falling": ("variance", 0.22, True, DEEPER,
                                   DEEPER + ("model.dropout=0.2", "optimizer.weight_decay=0.001", "trainer.max_epochs=10")),
    "mismatch-has-none": ("data_mismatch", 0.5, False, DEEPER, None),
    "no-gap": ("avoidable_bias", None, False, (), None),
}


@pytest.mark.parametrize("problem, gap, falling, deeper, expected", BOLD_CASES.values(), ids=BOLD_CASES.keys())
def test_bold_step_table(problem, gap, falling, deeper, expected):
    got = bold(BIAS_POOL, problem, gap, 0.01, NOW, ["experiment=underfit"], falling=falling, deeper=deeper)
    assert (got and got.overrides) == expected
    if got is not None:
        assert got.problem == problem and got.action.startswith("Bold step: ")
        assert shlex.split(got.command) == ["dlexp", "train", "experiment=underfit", *expected]
        # first in its round, before the single moves of that problem
        pool = [c for c in BIAS_POOL if c.problem == problem]
        assert next_round(pool, set(), 2, [got])[1] == [got, pool[0]]


def test_a_bold_step_needs_two_kinds_of_move():
    only_longer = [c for c in BIAS_POOL if c.action == "Train longer"]
    assert bold(only_longer, "avoidable_bias", 0.65, 0.01, NOW, []) is None


@pytest.mark.parametrize("curve, falling", [
    ([0.56, 0.54, 0.49, 0.43, 0.36, 0.33, 0.31, 0.31, 0.30, 0.297], True),   # best at the end
    ([0.56, 0.40, 0.30, 0.25, 0.24, 0.26, 0.28, 0.30], False),              # best long before the end
    ([0.50, 0.40, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30], False),              # flat: nothing left to gain
    ([0.5, 0.4, 0.3], False),                                               # too few epochs to tell
    ([], False)])
def test_dev_still_falling_at_the_last_epoch(curve, falling):
    assert still_falling(curve) is falling


def test_same_data_drops_the_moves_that_add_training_rows():
    pool = [cand("variance", "More training data: double the training set", "data.n_train=4000"),
            cand("variance", "Regularization: raise dropout", "model.dropout=0.2"),
            cand("data_mismatch", "Make training data like dev/test", "data.target_fraction=0.2")]
    assert [c.action for c in same_data(pool)] == [pool[1].action, pool[2].action]


# --- the whole budget is spent: once the incumbent's problems have nothing untried, what is left to try comes next

def test_a_near_gap_gets_a_bold_step_when_forced():
    assert bold(BIAS_POOL, "avoidable_bias", 0.09, 0.01, NOW, []) is None
    forced = bold(BIAS_POOL, "avoidable_bias", 0.09, 0.01, NOW, [], force=True)
    assert forced.overrides == ("model=mlp", "trainer.max_epochs=20", "optimizer.lr=0.009")
    # a gap within the tolerance, or none at all, too: the budget is what is spent
    assert bold(BIAS_POOL, "variance", None, 0.01, NOW, [], force=True).overrides == (
        "model.dropout=0.2", "optimizer.weight_decay=0.001")


OWN = [c for c in BIAS_POOL if c.problem == "variance"]
REST = ([bold(BIAS_POOL, "variance", 0.02, 0.01, NOW, [], force=True)]
        + [c for c in BIAS_POOL if c.problem == "avoidable_bias"])
# keys compared with the incumbent already -> (problem, actions of the next round, a round of what is left)
REST_CASES = {
    "own-actions-first": (set(), "variance", ["Regularization: raise dropout", "Regularization: weight decay"], False),
    "own-partly-tried": ({OWN[0].key, OWN[1].key}, "variance", ["Early stopping on the dev error"], False),
    # what stopped at nothing_helps before: the bold step whatever the gap, then the other problem's actions
    "own-all-tried": ({c.key for c in OWN}, "variance",
                      ["Bold step: raise dropout + weight decay: model.dropout=0.2 optimizer.weight_decay=0.001"], True),
    "bold-tried-too": ({c.key for c in OWN} | {REST[0].key}, "avoidable_bias",
                       ["Bigger model: a multi-layer perceptron instead of a linear model", "Train longer"], True),
    "everything-tried": ({c.key for c in OWN + REST}, None, [], True),
}


@pytest.mark.parametrize("tried, problem, actions, leftover", REST_CASES.values(), ids=REST_CASES.keys())
def test_the_budget_is_spent_on_what_is_left(tried, problem, actions, leftover):
    got_problem, chosen, got_leftover = next_or_rest(OWN, REST, tried, 2)
    assert (got_problem, [c.action for c in chosen], got_leftover) == (problem, actions, leftover)
    # only when nothing at all is left does the recipe stop at nothing_helps
    stop = stop_reason("variance", left=len(chosen), budget_left=3)
    assert stop == (None if chosen else "nothing_helps")
