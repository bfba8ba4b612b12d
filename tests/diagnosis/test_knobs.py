"""Knobs: the keys of a model's own config that next steps change (width, depth, dropout, learning rate)."""

from __future__ import annotations

import shlex

from dlexp.diagnosis import SplitErrors, diagnose, recommend
from dlexp.diagnosis.actions import family_knobs

BIAS = diagnose(SplitErrors(0.01, 0.15, 0.155, 0.16, 0.16))
VARIANCE = diagnose(SplitErrors(0.01, 0.015, 0.10, 0.105, 0.105))
BASE = ["model=custom", "model._target_=pkg.mod.Net"]


def config(model: dict) -> dict:
    return {"seed": 0, "data": {"name": "synthetic", "n_train": 1000}, "trainer": {"max_epochs": 10},
            "optimizer": {"name": "adam", "lr": 0.003, "weight_decay": 0.0}, "early_stopping": {"patience": 0},
            "model": {"_target_": "pkg.mod.Net", "name": "Net", **model}}


def overrides(actions) -> list[str]:
    return [o for a in actions if a.command for o in shlex.split(a.command)[2:] if o not in BASE and o != "-m"]


def test_width_doubles_depth_adds_one_and_dropout_rises():
    model = {"width": 2, "depth": 3, "p": 0.1, "knobs": {"width": ["width"], "depth": "depth", "dropout": "p"}}
    bias = overrides(recommend(BIAS, config(model), overrides=BASE))
    assert "model.width=4" in bias and "model.depth=4" in bias
    variance = overrides(recommend(VARIANCE, config(model), overrides=BASE))
    assert "model.p=0.3" in variance


def test_nested_keys_and_lists():
    model = {"net": {"lin1_size": 64, "sizes": [32, 16]},
             "knobs": {"width": ["net.lin1_size", "net.sizes"], "depth": "net.sizes"}}
    actions = recommend(BIAS, config(model), overrides=BASE)
    bigger = next(a for a in actions if a.action.startswith("Bigger model"))
    assert shlex.split(bigger.command)[-2:] == ["model.net.lin1_size=128", "model.net.sizes=[64,32]"]
    assert "model.net.sizes=[32,16,16]" in overrides(actions)


def test_without_knobs_only_model_independent_steps_have_commands():
    actions = recommend(BIAS, config({"width": 2}), overrides=BASE)
    assert not [o for o in overrides(actions) if o.startswith("model.")]
    assert "trainer.max_epochs=20" in overrides(actions)
    variance = overrides(recommend(VARIANCE, config({"width": 2}), overrides=BASE))
    assert {"data.n_train=2000", "early_stopping.patience=3", "optimizer.weight_decay=0.001"} <= set(variance)


def test_weight_decay_starts_strong_when_the_training_labels_are_memorised():
    # train 0% below a human level of 10%: the network fits its training labels' noise
    memorised = diagnose(SplitErrors(0.10, 0.0, 0.55, 0.56, 0.56))
    assert memorised.problems[0] == "variance"
    assert "optimizer.weight_decay=0.01" in overrides(recommend(memorised, config({}), overrides=BASE))
    # train above the human level: a light penalty first
    assert "optimizer.weight_decay=0.001" in overrides(recommend(VARIANCE, config({}), overrides=BASE))
    # a penalty already set: ten times it, whatever the fit
    stronger = dict(config({}), optimizer={"name": "adam", "lr": 0.003, "weight_decay": 0.01})
    assert "optimizer.weight_decay=0.1" in overrides(recommend(memorised, stronger, overrides=BASE))


def test_a_model_with_its_own_optimizer():
    own = {"optimizer": {"lr": 0.01}, "knobs": {"lr": "optimizer.lr", "own_optimizer": True}}
    flat = overrides(recommend(BIAS, config(own), overrides=BASE))
    assert "model.optimizer.lr=0.003,0.01,0.03" in flat and not [o for o in flat if o.startswith("optimizer.")]
    unnamed = overrides(recommend(VARIANCE, config({"knobs": {"own_optimizer": True}}), overrides=BASE))
    assert not [o for o in unnamed if o.startswith("optimizer.")]


def test_every_built_in_family_declares_knobs():
    for name in ("mlp", "cnn", "gru", "transformer"):
        knobs = family_knobs(name)
        assert knobs["width"] and knobs["depth"] and knobs["dropout"] == "dropout", name
    assert family_knobs("logistic")["instead"] == "mlp"
