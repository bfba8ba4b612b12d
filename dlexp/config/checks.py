"""Checks of a composed config before any work: no key that a built-in section does not know (even with
Hydra's `+`), a name for the user's own model, values in range."""

from __future__ import annotations

from dlexp.config.human import human_error
from dlexp.errors import ConfigError


def prepare(cfg) -> None:
    """Before any work: no key that a built-in section does not know, a name for a `_target_` model, values
    in range (`check`)."""
    reject_unknown(cfg)
    name_model(cfg)
    check(cfg)


def is_open(node) -> bool:
    """A section with `_target_` (model=custom, the user's own config files): its keys go to the callable."""
    from omegaconf import DictConfig

    return isinstance(node, DictConfig) and "_target_" in node.keys()


def reject_unknown(cfg, path: str = "") -> None:
    """Keys a built-in section's schema does not know, added by a `+` override (`+data.foo=3`, which Hydra
    lets through its struct mode): one line naming the key. Open sections (`is_open`: a plain `_target_` node, or
    a schema that declares `_target_`) are left to their callable, whose signature decides."""
    import dataclasses

    from omegaconf import DictConfig, OmegaConf

    kind = OmegaConf.get_type(cfg)
    known = {f.name for f in dataclasses.fields(kind)} if dataclasses.is_dataclass(kind) else set()
    if "_target_" in known:  # a schema of a `_target_` section (its own fields plus the callable's arguments)
        return
    if known:
        known |= {"hydra"} if not path else set()
        for key in cfg.keys():
            if key not in known:
                raise ConfigError(_unknown_line(f"{path}{key}", cfg, sorted(known - {"hydra"})))
    elif is_open(cfg):
        return
    for key in cfg.keys():
        if not OmegaConf.is_missing(cfg, key) and not OmegaConf.is_interpolation(cfg, key) \
                and isinstance(cfg[key], DictConfig):
            reject_unknown(cfg[key], f"{path}{key}.")


def _unknown_line(key: str, node, valid: list[str]) -> str:
    section, option = key.split(".")[0], node.get("name") if "name" in node else None
    where = f" (model={option} is built in)" if option and section == "model" else \
        f" (not a key of {section}={option})" if option else ""
    if key.endswith("._target_") and option:
        return (f"unknown config key '{key}'{where}: for your own callable use {section}=custom "
                f"{section}._target_=pkg.module.Name")
    return f"unknown config key '{key}'{where}; valid keys: {', '.join(valid)}"


def name_model(cfg) -> None:
    """A `_target_` model without a `name` is named after its callable (`pkg.mod.Net` -> `Net`), for run names."""
    from omegaconf import open_dict

    from omegaconf import OmegaConf

    model = cfg.get("model")
    if is_open(model) and OmegaConf.is_missing(model, "_target_"):
        raise ConfigError("model=custom needs model._target_=pkg.module.Name: a class or function (importable from "
                          "the working directory) that returns a torch nn.Module or a LightningModule")
    if is_open(model) and not model.get("name"):
        with open_dict(model):
            model.name = str(model._target_).rsplit(".", 1)[-1]


def check(cfg) -> None:
    """Values a schema cannot express (ranges, positivity), checked before any work starts."""
    from omegaconf import OmegaConf

    def get(key):
        return OmegaConf.select(cfg, key)

    positive = ["data.batch_size", "trainer.max_epochs", "optimizer.lr", "trainer.steps_per_call",
                "diagnosis.max_eval_examples"]
    positive += [f"data.{k}" for k in ("n_train", "n_train_dev", "n_dev", "n_test", "n_features", "n_classes",
                                       "seq_len", "vocab", "min_split_rows", "image_size",
                                       "vocab_size", "max_length")]
    builtin_model = not is_open(cfg.get("model"))  # a `_target_` model's keys are its callable's to judge
    if builtin_model:
        positive += [f"model.{k}" for k in ("kernel", "embed", "hidden_size", "layers", "d_model", "heads", "ff")]
    for key in positive:
        value = get(key)
        if value is not None and value <= 0:
            raise ConfigError(f"{key} must be positive, got {value}; set {key}=<a number above 0>")
    n_classes = get("data.n_classes")
    if n_classes is not None and n_classes < 2:
        raise ConfigError(f"data.n_classes must be at least 2, got {n_classes}")
    for key in ("data.label_noise", "data.target_fraction", "diagnosis.relative_tolerance") + \
            (("model.dropout",) if builtin_model else ()):
        value = get(key)
        if value is not None and not 0 <= value < 1:
            raise ConfigError(f"{key} must be in [0, 1), got {value}")
    for key, what in (("data.reweight", "1: the full density ratio"),
                      ("data.synthesize", "1: a dev-like copy of every training image")):
        value = get(key)
        if value is not None and not 0 <= value <= 1:
            raise ConfigError(f"{key} must be in [0, 1] (0: off, {what}), got {value}; e.g. {key}=0.5")
    noise, k = get("data.label_noise"), get("data.n_classes")
    if noise is not None and k and noise >= 1 - 1 / k:
        raise ConfigError(f"data.label_noise={noise} leaves nothing to learn with {k} classes; "
                          f"use a value below {1 - 1 / k:.3g}")
    fractions = [get(f"data.{k}") for k in ("train_dev_fraction", "dev_fraction", "test_fraction")]
    if all(f is not None for f in fractions):
        if any(not 0 < f < 1 for f in fractions) or sum(fractions) >= 1:
            raise ConfigError("data.train_dev_fraction, data.dev_fraction and data.test_fraction must each be "
                              f"in (0, 1) and leave room for training; got {fractions}")
    if get("diagnosis.tolerance") < 0:
        raise ConfigError(f"diagnosis.tolerance must be >= 0, got {get('diagnosis.tolerance')}")
    if get("early_stopping.patience") < 0:
        raise ConfigError("early_stopping.patience must be >= 0 (0 turns early stopping off)")
    hidden = get("model.hidden") if builtin_model else None
    if hidden is not None and (len(hidden) == 0 or any(h <= 0 for h in hidden)):
        raise ConfigError(f"model.hidden must list positive layer widths, got {list(hidden)}")
    channels = get("model.channels") if builtin_model else None
    if channels is not None and (len(channels) == 0 or any(c <= 0 for c in channels)):
        raise ConfigError(f"model.channels must list positive channel counts, got {list(channels)}")
    d_model, heads = (get("model.d_model"), get("model.heads")) if builtin_model else (None, None)
    if d_model and heads and d_model % heads:
        raise ConfigError(f"model.d_model ({d_model}) must be a multiple of model.heads ({heads})")
    vocab = get("data.vocab")
    if vocab is not None and vocab < 3:
        raise ConfigError(f"data.vocab must be at least 3 (token 0 is padding), got {vocab}")
    if get("data.seq_len") is not None and get("data.seq_len") < 4:
        raise ConfigError(f"data.seq_len must be at least 4, got {get('data.seq_len')}")
    if get("data.test_path") and not get("data.dev_path"):
        raise ConfigError("data.test_path needs data.dev_path too (dev and test come from the serving "
                          "distribution; without data.dev_path both are split from data.path)")
    if getattr(get("model.freeze"), "value", get("model.freeze")) == "body" and not get("model.init_from"):
        raise ConfigError("model.freeze=body needs model.init_from=RUN_ID: a body left at random weights "
                          "would never learn")
    if get("data.test_query") and not get("data.dev_query"):
        raise ConfigError("data.test_query needs data.dev_query too")
    if get("tracking.register") is not None:
        check_model_name(get("tracking.register"), "tracking.register=")
    human_error(get("baseline.human_error"), None, unbounded=get("data.task") in ("auto", "regression"))


def check_model_name(name: str, given: str = "") -> None:
    """A name MLflow's Model Registry accepts (`given`: how the user wrote it, for the line)."""
    if not str(name).strip() or any(c in str(name) for c in "/:"):
        raise ConfigError(f"{given}{name!r} is not a registered model name MLflow accepts: "
                          "it needs a non-empty name without '/' or ':'")
