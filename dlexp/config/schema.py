"""Typed config schemas, registered in Hydra's ConfigStore.

Every YAML option in `configs/<group>/` starts from one of these schemas, so an unknown key, a wrong type or
an unknown enum value fails at composition, not ten minutes into training. Imports Hydra and OmegaConf
only, never torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


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
    reweight: float = 0.0                    # draw training rows by how much they look like dev (data/reweight.py)
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
    reweight: float = 0.0                    # draw training rows by how much they look like dev (data/reweight.py)
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
    synthesize: float = 0.0                  # share of training images copied with dev's blur, grain, tone
    exclude_rows: Optional[str] = None       # a run id (the training rows it flagged) or a file of row numbers


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
    exclude_rows: Optional[str] = None       # a run id (the training rows it flagged) or a file of row numbers


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
    label_issues: Optional[bool] = None  # the wrong-label search: null = tables (table, sql, digits); true / false


@dataclass
class EarlyStoppingConfig:
    patience: int = 0  # epochs without a better dev error before stopping; 0: off
    min_delta: float = 0.0
    restore_best: bool = True  # measure (and keep) the weights of the epoch with the lowest dev error


@dataclass
class PruneConfig:
    """Stop a clearly losing run early (`dlexp recipe` sets it for its candidates; dlexp/training/prune.py)."""
    against: Optional[List[float]] = None  # the incumbent's dev error per epoch; None: off
    from_epoch: int = 2                    # the first epoch compared
    margin: float = 0.0                    # the incumbent's curve is raised by this much (noise)


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
    prune: PruneConfig = field(default_factory=PruneConfig)


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
