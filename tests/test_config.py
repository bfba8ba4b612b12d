"""Composition of dlexp's Hydra configs the way `dlexp train` composes them, and the checks on top."""

from __future__ import annotations

import shlex

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from dlexp.config import check, explain, register
from dlexp.diagnosis import SplitErrors, diagnose, recommend
from dlexp.errors import ConfigError

register()

OPTIONS = {
    "data": ["synthetic", "digits", "sequence", "table", "sql", "npz"],
    "model": ["mlp", "logistic", "cnn", "gru", "transformer"],
    "optimizer": ["adam", "sgd"],
    "trainer": ["default", "cpu", "gpu", "ddp"],
    "baseline": ["auto"],
    "tracking": ["local", "server"],
    "experiment": ["underfit", "overfit", "mismatch"],
}


# options whose required keys (MISSING in their schema) a user must give
NEEDS = {
    "table": ["data.path=houses.csv", "data.target=price"],
    "sql": ["data.url=sqlite:///shop.db", "data.query=select * from sales", "data.target=label"],
    "npz": ["data.path=images.npz"],
}


@pytest.fixture
def compose_cfg():
    """compose(overrides) with dlexp's packaged configs (GlobalHydra is cleared around each test by conftest)."""
    with initialize_config_module("dlexp.configs", version_base="1.3"):
        yield lambda overrides=(): compose("config", list(overrides))


def test_default_config(compose_cfg):
    cfg = compose_cfg()
    check(cfg)
    assert cfg.data.name == "synthetic"
    assert cfg.model.name == "mlp"
    assert cfg.optimizer.name == "adam"
    assert cfg.baseline.human_error == "auto"
    assert cfg.diagnosis.tolerance == 0.01
    assert cfg.tracking.uri is None
    # the keys that docs and tests rely on
    for key in ("data.n_train", "data.n_features", "data.n_classes", "data.label_noise", "data.shift",
                "data.batch_size", "model.hidden", "model.dropout", "optimizer.lr", "optimizer.weight_decay",
                "trainer.max_epochs", "baseline.human_error", "diagnosis.tolerance", "seed"):
        assert OmegaConf.select(cfg, key, default="<missing>") != "<missing>", key
    assert list(cfg.model.hidden) == [128, 128]


@pytest.mark.parametrize("group, option", [(g, o) for g, opts in OPTIONS.items() for o in opts],
                         ids=[f"{g}={o}" for g, opts in OPTIONS.items() for o in opts])
def test_every_option_composes_and_checks(compose_cfg, group, option):
    cfg = compose_cfg([f"{group}={option}", *NEEDS.get(option, [])])
    check(cfg)
    if group in ("data", "model", "optimizer"):
        assert cfg[group].name == option


def test_trainer_options_set_lightning_arguments(compose_cfg):
    assert compose_cfg(["trainer=cpu"]).trainer.accelerator == "cpu"
    gpu = compose_cfg(["trainer=gpu"]).trainer
    assert (gpu.accelerator, gpu.devices) == ("gpu", 1)
    ddp = compose_cfg(["trainer=ddp"]).trainer
    assert (ddp.strategy, ddp.devices) == ("ddp", -1)


def test_tracking_server_sets_a_uri(compose_cfg):
    assert compose_cfg(["tracking=server"]).tracking.uri.startswith("http")


def test_experiment_presets(compose_cfg):
    underfit = compose_cfg(["experiment=underfit"])
    assert underfit.model.name == "logistic"
    overfit = compose_cfg(["experiment=overfit"])
    assert overfit.data.n_train == 500 and list(overfit.model.hidden) == [512, 512]
    assert compose_cfg(["experiment=mismatch"]).data.shift == 1.5
    # a command-line choice still wins over the preset's
    assert compose_cfg(["experiment=underfit", "model=mlp"]).model.name == "mlp"


def test_overrides_are_typed(compose_cfg):
    cfg = compose_cfg(["data.n_train=123", "model.hidden=[7,5]", "optimizer.lr=0.1", "baseline.human_error=0.02",
                       "model.activation=tanh"])
    check(cfg)
    assert cfg.data.n_train == 123
    assert list(cfg.model.hidden) == [7, 5]
    assert cfg.optimizer.lr == 0.1
    assert float(cfg.baseline.human_error) == 0.02


def test_configs_do_not_depend_on_the_working_directory(compose_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg(["data=digits"])
    check(cfg)
    assert cfg.data.name == "digits"


# --------------------------------------------------------------------------------------------------
# errors at composition: raise, and explain() makes one line naming the key and the valid choices

BAD = {
    "unknown-option": (["data=nope"], ["nope", "data", "synthetic", "digits"]),
    "unknown-model": (["model=resnet"], ["resnet", "model", "mlp", "logistic", "transformer"]),
    "unknown-preset": (["experiment=nope"], ["nope", "underfit", "overfit", "mismatch"]),
    "unknown-key": (["data.foo=1"], ["data.foo", "n_train", "label_noise"]),
    "unknown-top-key": (["fo0=1"], ["fo0", "seed", "data"]),
    "key-of-another-option": (["model=logistic", "model.hidden=[8]"], ["model.hidden"]),
    "wrong-type": (["trainer.max_epochs=abc"], ["trainer.max_epochs", "abc", "int"]),
    "wrong-type-in-list": (["model.hidden=[a]"], ["model.hidden", "int"]),
    "not-a-bool": (["early_stopping.restore_best=maybe"], ["early_stopping.restore_best", "maybe", "true or false"]),
    "bad-enum": (["model.activation=sigmoid"], ["model.activation", "sigmoid", "relu", "gelu", "tanh"]),
}


@pytest.mark.parametrize("overrides, named", BAD.values(), ids=BAD.keys())
def test_bad_override_raises_and_is_explained_in_one_line(compose_cfg, overrides, named):
    with pytest.raises(Exception) as info:
        check(compose_cfg(overrides))
    message = explain(info.value)
    assert message and "\n" not in message.strip()
    for word in named:
        assert word.lower() in message.lower(), (word, message)
    assert "Traceback" not in message


@pytest.mark.parametrize("override, key", [
    ("trainer.max_epochs=0", "trainer.max_epochs"),
    ("data.n_train=-5", "data.n_train"),
    ("baseline.human_error=1.5", "baseline.human_error"),
    ("baseline.human_error=-0.1", "baseline.human_error"),
    ("baseline.human_error=abc", "baseline.human_error"),
    ("optimizer.lr=0", "optimizer.lr"),
    ("model.dropout=1.0", "model.dropout"),
    ("data.label_noise=0.8", "data.label_noise"),
    ("data.n_classes=1", "data.n_classes"),
    ("diagnosis.tolerance=-0.01", "diagnosis.tolerance"),
])
def test_check_rejects_values_a_schema_cannot(compose_cfg, override, key):
    cfg = compose_cfg([override])  # composes: the type is right
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        check(cfg)
    assert "\n" not in str(info.value)


def test_check_rejects_digit_fractions_that_leave_no_training_data(compose_cfg):
    cfg = compose_cfg(["data=digits", "data.dev_fraction=0.5", "data.test_fraction=0.5"])
    with pytest.raises(ConfigError, match="fraction"):
        check(cfg)


# --------------------------------------------------------------------------------------------------
# every next command dlexp recommends is one that composes and passes the checks

RUN_CONFIGS = {
    "default": [],
    "small-mlp": ["model.hidden=[4]", "optimizer.lr=0.0001", "early_stopping.patience=2"],
    "regularised-sgd": ["optimizer=sgd", "model.dropout=0.3", "optimizer.weight_decay=0.01"],
    "underfit-preset": ["experiment=underfit"],
    "digits": ["data=digits"],
    "mismatch-mostly-mixed": ["data.shift=1.5", "data.target_fraction=0.6"],
}


@pytest.mark.parametrize("base", RUN_CONFIGS.values(), ids=RUN_CONFIGS.keys())
def test_recommended_commands_compose_and_check(compose_cfg, base):
    cfg = compose_cfg(base)
    check(cfg)
    plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    # every problem at once, and a divergence, so every kind of action is produced
    d = diagnose(SplitErrors(0.01, 0.2, 0.3, 0.4, 0.5), diverged_at=5)
    actions = recommend(d, plain, overrides=base)
    assert {a.problem for a in actions} == {"diverged", "avoidable_bias", "variance", "data_mismatch",
                                           "dev_overfitting"}
    for a in actions:
        if a.command is None:
            continue
        words = shlex.split(a.command)
        assert words[:2] == ["dlexp", "train"]
        overrides = [w for w in words[2:] if w != "-m"]
        if "-m" in words:  # a sweep: each of its values must work
            sweeps = [w for w in overrides if "," in w and "[" not in w]
            assert sweeps, a.command
            key, values = sweeps[0].split("=", 1)
            values = values.split(",")
            jobs = [[o if o != sweeps[0] else f"{key}={v}" for o in overrides] for v in (values[0], values[-1])]
        else:
            jobs = [overrides]
        for job in jobs:
            try:
                check(compose_cfg(job))
            except Exception as exc:  # noqa: BLE001 - the message is the point
                msg = str(exc) if isinstance(exc, ConfigError) else explain(exc)
                pytest.fail(f"recommended `{a.command}` ({a.problem}: {a.action}) fails: {msg}")
