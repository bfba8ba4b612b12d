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
    exclude_rows: Optional[str] = None       # a run id (the training rows it flagged) or a file of row numbers


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
    exclude_rows: Optional[str] = None       # a run id (the training rows it flagged) or a file of row numbers


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
    exclude_rows: Optional[str] = None       # a run id (the training rows it flagged) or a file of row numbers


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


# --------------------------------------------------------------------------------------------- model


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
class MLPModel(TransferOptions):
    name: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [128, 128])
    dropout: float = 0.0
    activation: Activation = Activation.relu


@dataclass
class LogisticModel(TransferOptions):
    name: str = "logistic"


@dataclass
class CNNModel(TransferOptions):
    name: str = "cnn"
    channels: list[int] = field(default_factory=lambda: [32, 64])  # one conv block (conv, BN, ReLU, pool) each
    kernel: int = 3
    batchnorm: bool = True
    dropout: float = 0.0       # before the linear head


class Cell(str, Enum):
    gru = "gru"
    lstm = "lstm"


@dataclass
class GRUModel(TransferOptions):
    name: str = "gru"
    cell: Cell = Cell.gru
    embed: int = 32
    hidden_size: int = 64
    layers: int = 1
    dropout: float = 0.0


@dataclass
class TransformerModel(TransferOptions):
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


@dataclass
class DiagnosisConfig:
    tolerance: float = 0.01
    relative_tolerance: Optional[float] = None  # set: tolerance = this x the spread of the target (see docs)


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
              "transformer": TransformerModel},
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
            cs.store(group=f"schema/{group}", name=name, node=node)


# ---------------------------------------------------------------------------------------- checking


def check(cfg) -> None:
    """Values a schema cannot express (ranges, positivity), checked before any work starts."""
    from omegaconf import OmegaConf

    def get(key):
        return OmegaConf.select(cfg, key)

    positive = ["data.batch_size", "trainer.max_epochs", "optimizer.lr", "trainer.steps_per_call"]
    positive += [f"data.{k}" for k in ("n_train", "n_train_dev", "n_dev", "n_test", "n_features", "n_classes",
                                       "seq_len", "vocab", "min_split_rows", "image_size",
                                       "vocab_size", "max_length")]
    positive += [f"model.{k}" for k in ("kernel", "embed", "hidden_size", "layers", "d_model", "heads", "ff")]
    for key in positive:
        value = get(key)
        if value is not None and value <= 0:
            raise ConfigError(f"{key} must be positive, got {value}; set {key}=<a number above 0>")
    n_classes = get("data.n_classes")
    if n_classes is not None and n_classes < 2:
        raise ConfigError(f"data.n_classes must be at least 2, got {n_classes}")
    for key in ("data.label_noise", "data.target_fraction", "model.dropout", "diagnosis.relative_tolerance"):
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
    hidden = get("model.hidden")
    if hidden is not None and (len(hidden) == 0 or any(h <= 0 for h in hidden)):
        raise ConfigError(f"model.hidden must list positive layer widths, got {list(hidden)}")
    channels = get("model.channels")
    if channels is not None and (len(channels) == 0 or any(c <= 0 for c in channels)):
        raise ConfigError(f"model.channels must list positive channel counts, got {list(channels)}")
    d_model, heads = get("model.d_model"), get("model.heads")
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
    schemas = [Config] + [node for options in SCHEMAS.values() for node in options.values()]
    schema = next((node for node in schemas if node.__name__ == schema_name), None)
    if schema is None and "." not in full_key:
        schema = Config
    return list(schema.__dataclass_fields__) if schema else []
