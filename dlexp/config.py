"""Typed config schemas (registered in Hydra's ConfigStore), value checks, and composition errors as one line.

Every YAML option in `configs/<group>/` starts from one of these schemas, so an unknown key, a wrong type or
an unknown enum value fails at composition, not ten minutes into training. Imports Hydra and OmegaConf
only, never torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from dlexp.errors import ConfigError

# ---------------------------------------------------------------------------------------------- data


@dataclass
class SyntheticData:
    name: str = "synthetic"
    n_train: int = 10000
    n_train_dev: int = 2000
    n_dev: int = 2000
    n_test: int = 2000
    n_features: int = 10
    n_classes: int = 4
    label_noise: float = 0.05
    shift: float = 0.0
    target_fraction: float = 0.0
    task_seed: int = 0
    batch_size: int = 256


@dataclass
class CarvedSplits:
    """What sources share that carve train-dev, dev and test out of one set of examples, by fraction."""

    n_train: Optional[int] = None            # cap on training examples; None: all that remain
    train_dev_fraction: float = 0.1
    dev_fraction: float = 0.15
    test_fraction: float = 0.15
    batch_size: int = 64


@dataclass
class DigitsData(CarvedSplits):
    name: str = "digits"


class Task(str, Enum):
    auto = "auto"
    classification = "classification"
    regression = "regression"


class Metric(str, Enum):
    rmse = "rmse"
    mae = "mae"


class Missing(str, Enum):
    error = "error"
    drop = "drop"
    impute = "impute"


@dataclass
class TabularOptions:
    """What `data=table` and `data=sql` share: columns, task, missing values and split sizes."""

    target: str = MISSING
    features: Optional[list[str]] = None     # None: every column but the target
    categorical: Optional[list[str]] = None  # forced one-hot; None: text and boolean columns
    task: Task = Task.auto
    metric: Metric = Metric.rmse             # regression only; classification is judged by error rate
    missing: Missing = Missing.error
    n_train: Optional[int] = None            # cap on training rows; None: all that remain
    n_train_dev: Optional[int] = None        # sizes in rows; None: the fractions below
    n_dev: Optional[int] = None
    n_test: Optional[int] = None
    train_dev_fraction: float = 0.1
    dev_fraction: float = 0.15
    test_fraction: float = 0.15
    target_fraction: float = 0.0             # with a separate dev source: share of it moved into training
    min_split_rows: int = 100                # a split smaller than this is reported as too small
    batch_size: int = 256


@dataclass
class TableData(TabularOptions):
    name: str = "table"
    path: str = MISSING                      # .csv/.tsv/.parquet
    dev_path: Optional[str] = None           # dev/test distribution, when it differs from training
    test_path: Optional[str] = None


@dataclass
class SqlData(TabularOptions):
    name: str = "sql"
    url: str = MISSING                       # any SQLAlchemy URL
    query: str = MISSING
    dev_query: Optional[str] = None
    test_query: Optional[str] = None


@dataclass
class NpzData(CarvedSplits):
    name: str = "npz"
    path: str = MISSING                      # .npz with X (N x C x H x W, or N x H x W) and y (N,)
    x_key: str = "X"
    y_key: str = "y"


@dataclass
class SequenceData:
    name: str = "sequence"
    seq_len: int = 20          # longest sequence; lengths vary from seq_len // 2 + 1 up to this
    vocab: int = 16            # token ids 1..vocab-1; 0 is padding
    n_train: int = 4000
    n_train_dev: int = 1000
    n_dev: int = 1000
    n_test: int = 1000
    label_noise: float = 0.0   # share of flipped labels: the Bayes error
    batch_size: int = 128


class Color(str, Enum):
    rgb = "rgb"
    gray = "gray"


@dataclass
class ImagesData(CarvedSplits):
    name: str = "images"
    path: str = MISSING                      # a folder with one sub-folder of PNG/JPEG images per class
    dev_path: Optional[str] = None           # the same layout, from the serving distribution
    test_path: Optional[str] = None
    image_size: int = 32                     # every image is resized to image_size x image_size
    color: Color = Color.rgb
    augment: bool = False                    # random crops, flips, small rotations of training batches


class TextTask(str, Enum):
    classification = "classification"
    lm = "lm"


class TokenizerKind(str, Enum):
    bpe = "bpe"
    wordpiece = "wordpiece"


@dataclass
class TextData(CarvedSplits):
    name: str = "text"
    path: str = MISSING                      # .csv/.tsv/.jsonl (or .txt of one text per line for task=lm)
    dev_path: Optional[str] = None
    test_path: Optional[str] = None
    text_column: str = "text"
    label_column: str = "label"
    task: TextTask = TextTask.classification  # lm: next-token prediction, no labels (pre-training)
    tokenizer: TokenizerKind = TokenizerKind.bpe
    vocab_size: int = 2000
    lowercase: bool = True
    max_length: int = 64                     # tokens per text, [BOS] and [EOS] included
    tokenizer_path: Optional[str] = None     # reuse a saved tokenizer.json (model.init_from sets it)
    unlabelled_path: Optional[str] = None    # unlabelled text to pre-train on (the diagnosis proposes it)


def custom_data():
    """The schema of `data=custom`: an open section whose keys, but dlexp's own (`CUSTOM_DATA_KEYS`), go to
    `_target_` where its signature takes them (dlexp/data/custom.py)."""
    from omegaconf import OmegaConf

    node = OmegaConf.create({"_target_": MISSING, **CUSTOM_DATA_KEYS})
    OmegaConf.set_struct(node, False)  # data.KEY=VALUE without a `+`: the callable's signature decides
    return node


# dlexp's own keys of data=custom (configs/data/custom.yaml says what each does)
CUSTOM_DATA_KEYS = {"name": "custom", "batch_size": 64, "num_workers": 0, "train_dev_fraction": 0.1,
                    "n_train": None, "n_classes": None, "task": "auto", "metric": "rmse"}


# --------------------------------------------------------------------------------------------- model


@dataclass
class Knobs:
    """The model's own keys that next steps, the recipe and `dlexp curve --axis model` change (dotted for nested
    keys: `net.lin1_size`). Without them, only the model-independent steps come with commands."""

    width: list[str] = field(default_factory=list)  # "bigger model" doubles each (a number or a list of numbers)
    depth: Optional[str] = None      # "deeper": a number gains one; a list gains an entry (its last x depth_growth)
    depth_growth: int = 1
    dropout: Optional[str] = None    # "raise dropout" (variance) raises it, "lower dropout" (bias) halves it
    multiple_of: dict[str, str] = field(default_factory=dict)  # width key -> key it stays a multiple of (heads)
    width_words: Optional[str] = None  # how next steps name the width ("the width of every hidden layer")
    depth_words: Optional[str] = None  # how they name one more layer ("one more hidden layer")
    lr: Optional[str] = None         # a model that brings its own optimizer (a LightningModule): its learning
    weight_decay: Optional[str] = None  # rate and weight decay keys (optimizer.lr); else dlexp's optimizer.*
    own_optimizer: bool = False      # set by dlexp for a LightningModule: dlexp's optimizer.* does not apply
    instead: Optional[str] = None    # another model option to try for more capacity (logistic: mlp)
    instead_words: Optional[str] = None
    instead_why: Optional[str] = None


class Freeze(str, Enum):
    none = "none"
    body = "body"


@dataclass
class TransferOptions:
    """What every model family shares: where its weights start, and which of them train."""

    init_from: Optional[str] = None          # a finished run's id: start from its weights (name and shape match)
    freeze: Freeze = Freeze.none             # body: train only the head


class Activation(str, Enum):
    relu = "relu"
    gelu = "gelu"
    tanh = "tanh"


@dataclass
class BuiltinModel(TransferOptions):
    knobs: Knobs = field(default_factory=Knobs)


def custom_model():
    """The schema of `model=custom`: an open section whose keys, but `name` and `knobs`, go to `_target_`."""
    from omegaconf import OmegaConf

    node = OmegaConf.create({"_target_": MISSING, "name": None, "knobs": OmegaConf.structured(Knobs)})
    OmegaConf.set_struct(node, False)  # model.KEY=VALUE without a `+`: the callable's signature decides
    return node


@dataclass
class MLPModel(BuiltinModel):
    name: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [128, 128])
    dropout: float = 0.0
    activation: Activation = Activation.relu


@dataclass
class LogisticModel(BuiltinModel):
    name: str = "logistic"


@dataclass
class CNNModel(BuiltinModel):
    name: str = "cnn"
    channels: list[int] = field(default_factory=lambda: [32, 64])  # one conv block (conv, BN, ReLU, pool) each
    kernel: int = 3
    batchnorm: bool = True
    dropout: float = 0.0       # before the linear head


class Cell(str, Enum):
    gru = "gru"
    lstm = "lstm"


@dataclass
class GRUModel(BuiltinModel):
    name: str = "gru"
    cell: Cell = Cell.gru
    embed: int = 32
    hidden_size: int = 64
    layers: int = 1
    dropout: float = 0.0


@dataclass
class TransformerModel(BuiltinModel):
    name: str = "transformer"
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    ff: int = 128              # width of each layer's feed-forward block
    dropout: float = 0.0


# ----------------------------------------------------------------------------------------- optimizer


@dataclass
class AdamOptimizer:
    name: str = "adam"
    lr: float = 3e-3
    weight_decay: float = 0.0
    grad_clip: Optional[float] = None


@dataclass
class SGDOptimizer:
    name: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    grad_clip: Optional[float] = None


# --------------------------------------------------------------------------------------- the rest


@dataclass
class TrainerConfig:
    """Options handed to Lightning's Trainer as they are (None: Lightning's default)."""

    max_epochs: int = 20
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: Optional[str] = None
    max_steps: int = -1
    min_epochs: Optional[int] = None
    max_time: Optional[str] = None
    limit_train_batches: Optional[float] = None
    limit_val_batches: Optional[float] = None
    check_val_every_n_epoch: int = 1
    deterministic: Optional[bool] = None
    benchmark: Optional[bool] = None
    enable_progress_bar: Optional[bool] = None  # None: a progress bar on a terminal, plain lines otherwise
    steps_per_call: Optional[int] = None  # optimizer steps per training_step call; None: ~4096 rows, at most 32


@dataclass
class BaselineConfig:
    # a number in [0, 1], a range [lo, hi] (several annotators), auto (the source's Bayes error, estimated
    # where none is known: tables, sql, npz) or none (no baseline: avoidable bias unknown)
    human_error: Any = "auto"


@dataclass
class TrackingConfig:
    uri: Optional[str] = None  # None: sqlite under $DLEXP_RUNS_DIR (default ./runs)
    experiment: str = "dlexp"
    run_name: Optional[str] = None
    register: Optional[str] = None  # set: the run's model is registered under this name in the Model Registry


@dataclass
class DiagnosisConfig:
    tolerance: float = 0.01
    relative_tolerance: Optional[float] = None  # set: tolerance = this x the spread of the target (see docs)
    max_eval_examples: Optional[int] = None  # set: each split's error on a seeded sample of at most this many


@dataclass
class EarlyStoppingConfig:
    patience: int = 0  # epochs without a better dev error before stopping; 0: off
    min_delta: float = 0.0


@dataclass
class Config:
    seed: int = 0
    data: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    diagnosis: DiagnosisConfig = field(default_factory=DiagnosisConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


SCHEMAS = {
    "data": {"synthetic": SyntheticData, "digits": DigitsData, "table": TableData, "sql": SqlData,
             "npz": NpzData, "sequence": SequenceData, "images": ImagesData, "text": TextData},
    "model": {"mlp": MLPModel, "logistic": LogisticModel, "cnn": CNNModel, "gru": GRUModel,
              "transformer": TransformerModel, "custom": custom_model},
    "optimizer": {"adam": AdamOptimizer, "sgd": SGDOptimizer},
    "trainer": {"default": TrainerConfig},
    "baseline": {"default": BaselineConfig},
    "tracking": {"default": TrackingConfig},
}


def register() -> None:
    """Put the schemas where the YAML options find them: `/schema/<group>/<name>`."""
    cs = ConfigStore.instance()
    cs.store(name="dlexp_schema", node=Config)
    for group, options in SCHEMAS.items():
        for name, node in options.items():
            is_schema = isinstance(node, type)
            cs.store(group=f"schema/{group}", name=name, node=node if is_schema else node())
    cs.store(group="schema/data", name="custom", node=custom_data())


# ---------------------------------------------------------------------------------------- checking


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
    human_error(get("baseline.human_error"), None, unbounded=get("data.task") in ("auto", "regression"))


def human_source(value: Any) -> str:
    """`baseline.human_error` -> "auto", "none" or "given" (a number or a range)."""
    if isinstance(value, str) and value.strip().lower() in ("auto", "none"):
        return value.strip().lower()
    return "none" if value is None else "given"


def human_range(value: Any, *, unbounded: bool = False) -> tuple[float, float] | None:
    """`baseline.human_error` given as a range [lo, hi] -> (lo, hi); None for a single number or auto."""
    if isinstance(value, str) or not hasattr(value, "__len__"):
        return None
    values = [human_error(v, None, unbounded=unbounded) for v in value]
    if len(values) != 2 or values[0] > values[1]:
        raise ConfigError(f"baseline.human_error as a range needs [lo, hi] with lo <= hi, got {list(value)}")
    return values[0], values[1]


def human_error(value: Any, bayes_error: float | None, *, required: str | None = None,
                unbounded: bool = False) -> float:
    """Resolve `baseline.human_error`: a number in [0, 1], a range [lo, hi] (its midpoint; `human_range`
    gives the ends), or `auto` (the data source's Bayes error).

    `required` names a source without a known Bayes error where `auto` cannot stand (tables, SQL, npz);
    `unbounded` allows any non-negative number (regression: the error is in the target's unit).
    """
    if human_source(value) == "none":
        return 0.0  # no baseline: the diagnosis treats avoidable bias as unknown
    lo_hi = human_range(value, unbounded=unbounded)
    if lo_hi is not None:
        return (lo_hi[0] + lo_hi[1]) / 2
    if isinstance(value, str) and value.strip().lower() == "auto":
        if bayes_error is None and required:
            raise ConfigError(f"{required} has no known Bayes error, so baseline.human_error=auto cannot "
                              "stand in for it; set your estimate, e.g. baseline.human_error=0.02 "
                              "(for regression, in the target's unit)")
        return bayes_error if bayes_error is not None else 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"baseline.human_error must be a number in [0, 1], a range [lo, hi], auto or none, "
                          f"got {value!r}") from None
    if unbounded:
        if not number >= 0 or number == float("inf"):
            raise ConfigError(f"baseline.human_error must be a finite number >= 0, got {number}")
        return number
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"baseline.human_error must be in [0, 1], got {number}; an error rate of 2% is 0.02")
    return number


# ------------------------------------------------------------------------------ errors, one line each


def explain(exc: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line composition errors as one line naming the key and the choices."""
    text = str(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and type(exc).__name__ == "ConfigCompositionException":
        text = f"{text}\n{cause}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    full_key = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("full_key:")), None)

    m = re.search(r"Could not find '([^']+)'", text)
    if m:
        group, _, option = m.group(1).rpartition("/")
        choices = re.findall(r"^\t(\S+)$", text.split("Config search path")[0], flags=re.M)
        if choices:
            return f"unknown option '{option}' for {group}; choose one of: {', '.join(choices)}"
        return f"unknown config group or option '{m.group(1)}'"
    if type(exc).__name__ == "OverrideParseException":
        return f"cannot parse the override: {lines[0]} (quote lists in the shell: 'model.hidden=[64,64]')"
    m = re.search(r"Key '([^']+)' (?:is )?not in (?:struct|'(\w+)')", text)
    if m:
        key = full_key or m.group(1)
        schema = re.search(r"object_type=(\w+)", text)
        valid = _valid_keys(key, schema.group(1) if schema else None)
        hint = f"; valid keys: {', '.join(valid)}" if valid else ""
        return f"unknown config key '{key}'{hint}"
    m = re.search(r"Invalid value '([^']*)', expected one of \[([^\]]*)\]", text)
    if m:
        return f"invalid value '{m.group(1)}' for {full_key or 'a config key'}; choose one of: {m.group(2)}"
    m = re.search(r"Value '([^']*)' (?:of type '(\w+)' )?could not be converted to (\w+)", text)
    if m:
        return f"{full_key or 'a config key'} expects {m.group(3).lower()}, got '{m.group(1)}'"
    m = re.search(r"Could not override '([^']+)'", text)
    if m:
        return f"cannot override '{m.group(1)}': {lines[-1]}"
    return lines[0] if lines else type(exc).__name__


def _valid_keys(full_key: str, schema_name: str | None) -> list[str]:
    schemas = [Config] + [node for options in SCHEMAS.values() for node in options.values() if isinstance(node, type)]
    schema = next((node for node in schemas if node.__name__ == schema_name), None)
    if schema is None and "." not in full_key:
        schema = Config
    return list(schema.__dataclass_fields__) if schema else []
