"""`data=custom`: the user's own data, from `data._target_` (a callable importable from the working directory).

The callable returns a mapping of map-style torch Datasets `{"train", "dev", "test"}` with an optional
`"train_dev"`, or a LightningDataModule (either package) whose `train_dataloader`, `val_dataloader` (= dev),
`test_dataloader` and optional `train_dev_dataloader` give the splits (dlexp reads the Datasets behind them).
Items are `(x, y)`. Train-dev, when missing, is carved from train (seeded, `data.train_dev_fraction`);
`data.n_train` keeps a seeded subset of train. Nothing is gathered into arrays: the splits are read through
DataLoaders (dlexp/training/loaders.py). Keys of the section other than dlexp's own go to the callable where
its signature accepts them.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlexp.config import CUSTOM_DATA_KEYS
from dlexp.errors import ConfigError, DataError
from dlexp.targets import importable, locate

SPLITS = ("train", "train_dev", "dev", "test")
LABEL_SAMPLE = 10_000  # training items read to infer the task, the number of classes and the target's scale


class Rows:
    """A map-style view of `rows` of `dataset` (indices as plain ints, as the user's `__getitem__` expects)."""

    def __init__(self, dataset, rows: np.ndarray):
        rows = np.asarray(rows)
        self.dataset, self.rows = dataset, rows.astype(np.int32 if len(dataset) < 2**31 else np.int64, copy=False)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.dataset[int(self.rows[i])]


@dataclass
class DataSplits:
    """The user's four splits as Datasets, with what `Splits` tells the rest of dlexp (task, classes, ...)."""

    datasets: dict[str, Any]          # split -> map-style Dataset of (x, y)
    n_classes: int
    input_shape: tuple[int, ...]
    task: str = "classification"
    metric: str = "error_rate"
    target_mean: float = 0.0
    target_std: float = 1.0
    collate: dict[str, Any] = field(default_factory=dict)  # split -> the user's collate_fn (a DataModule's)
    needs_human: str | None = None
    spread: float = 1.0
    description: Mapping[str, Any] = field(default_factory=dict)
    bayes_error: float | None = None
    vocab: int | None = None
    checks: tuple[str, ...] = ()
    stats: Mapping[str, float] = field(default_factory=dict)
    preprocessing: Any = None
    augment: Any = None

    def sizes(self) -> dict[str, int]:
        return {name: len(self.datasets[name]) for name in SPLITS}

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape)) if self.input_shape else 1

    def __getattr__(self, name):
        datasets = self.__dict__.get("datasets")
        if name in SPLITS and datasets is not None:  # splits.train, splits.dev, ...: the Dataset
            return datasets[name]
        raise AttributeError(name)


def is_custom(data_cfg) -> bool:
    """A data section of the user's own callable: it has a `_target_` key, even one still missing (`data=custom`)."""
    return data_cfg is not None and "_target_" in data_cfg.keys()  # `in data_cfg` is False for a missing value


NEEDS_TARGET = ("data=custom needs data._target_=pkg.module.make_data: a callable (importable from the working "
                "directory) that returns {'train', 'dev', 'test'} Datasets or a LightningDataModule")


def complete(data_cfg) -> None:
    """A `_target_` data section from the user's own config file: dlexp's own keys it leaves out, filled in;
    one line when the `_target_` itself is missing (`data=custom` alone)."""
    from omegaconf import OmegaConf, open_dict

    if OmegaConf.is_missing(data_cfg, "_target_"):
        raise ConfigError(NEEDS_TARGET)
    with open_dict(data_cfg):
        for key, value in CUSTOM_DATA_KEYS.items():
            if key not in data_cfg:
                data_cfg[key] = value
        if data_cfg.name == "custom" and not str(data_cfg._target_).startswith("???"):
            data_cfg.name = str(data_cfg._target_)  # run names and titles say whose data it is


def build(data_cfg, *, seed: int) -> DataSplits:
    data_cfg = data_cfg.copy()
    complete(data_cfg)
    target = str(data_cfg._target_)
    if not target:  # a missing one (???) is refused by complete()
        raise ConfigError(NEEDS_TARGET)
    made = call(target, data_cfg, seed=seed)
    datasets, collate = _datasets(made, target)
    for name in ("train", "dev", "test"):
        _check(datasets[name], name, target)
    frac = float(data_cfg.train_dev_fraction)
    if "train_dev" not in datasets:
        if not 0 < frac < 1:
            raise ConfigError(f"data.train_dev_fraction must be in (0, 1), got {frac}")
        n = len(datasets["train"])
        order = np.random.default_rng(seed).permutation(n)
        k = max(1, round(frac * n))
        if k >= n:
            raise DataError(f"the 'train' split from {target}() has {n} items: too few to carve train-dev from; "
                            "return a 'train_dev' split of your own or give more training items")
        datasets["train_dev"] = Rows(datasets["train"], np.sort(order[:k]))
        datasets["train"] = Rows(datasets["train"], np.sort(order[k:]))
        collate.setdefault("train_dev", collate.get("train"))
    else:
        _check(datasets["train_dev"], "train_dev", target)
    if data_cfg.get("n_train") and int(data_cfg.n_train) < len(datasets["train"]):
        rows = np.random.default_rng(seed + 1).choice(len(datasets["train"]), int(data_cfg.n_train), replace=False)
        datasets["train"] = Rows(datasets["train"], np.sort(rows))
    return _describe(datasets, collate, data_cfg, target, seed=seed)


def call(target: str, data_cfg, *, seed: int):
    """Import `target` and call it with the section's keys its signature accepts; one line for what goes wrong."""
    fn = resolve(target)
    own = set(CUSTOM_DATA_KEYS) | {"_target_"}
    given = {k: data_cfg[k] for k in data_cfg if k not in own}
    offered = {k: data_cfg[k] for k in ("batch_size", "num_workers") if k in data_cfg}
    offered["seed"] = seed
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = None
    if params is not None:
        anything = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        unknown = [k for k in given if k not in params and not anything]
        if unknown:
            takes = ", ".join(n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
            raise ConfigError(f"{target}() got an unexpected argument '{unknown[0]}' (data.{unknown[0]}); "
                              f"it takes: {takes or 'no arguments'}")
        given.update({k: v for k, v in offered.items() if k in params and k not in given})
        missing = [n for n, p in params.items() if p.default is p.empty and n not in given
                   and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if missing:
            raise ConfigError(f"{target}() needs the argument '{missing[0]}': set data.{missing[0]}=VALUE")
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    node = OmegaConf.create({"_target_": target, **{k: _plain(v) for k, v in given.items()}})
    try:
        return instantiate(node, _convert_="all")
    except Exception as exc:
        cause = exc.__cause__ or exc
        text = str(cause).strip().splitlines()
        raise DataError(f"{target}() failed: {type(cause).__name__}: {text[-1] if text else ''}") from None


def _plain(v):
    from omegaconf import DictConfig, ListConfig, OmegaConf

    return OmegaConf.to_container(v, resolve=True) if isinstance(v, (DictConfig, ListConfig)) else v


def resolve(target: str):
    """The callable named `pkg.module.name`, the working directory importable."""
    importable()
    return locate(target, "data")


def _datasets(made, target: str) -> tuple[dict, dict]:
    """{split: Dataset}, {split: collate_fn} from a mapping of Datasets or a LightningDataModule."""
    if isinstance(made, Mapping):
        missing = [s for s in ("train", "dev", "test") if s not in made]
        if missing:
            raise DataError(f"{target}() returned a mapping without {', '.join(repr(m) for m in missing)}; "
                            "it needs 'train', 'dev' and 'test' Datasets (and may give 'train_dev')")
        unknown = [k for k in made if k not in SPLITS]
        if unknown:
            raise DataError(f"{target}() returned an unknown split {unknown[0]!r}; splits are {', '.join(SPLITS)}")
        return {k: made[k] for k in SPLITS if k in made}, {}
    if hasattr(made, "train_dataloader") and hasattr(made, "setup"):
        return _from_datamodule(made, target)
    raise DataError(f"{target}() returned {type(made).__name__}, not a mapping of Datasets "
                    "{'train', 'dev', 'test'} nor a LightningDataModule")


def _from_datamodule(dm, target: str) -> tuple[dict, dict]:
    dm.prepare_data()
    dm.setup("fit")
    loaders = {"train": dm.train_dataloader(), "dev": dm.val_dataloader()}
    if hasattr(dm, "train_dev_dataloader"):
        loaders["train_dev"] = dm.train_dev_dataloader()
    dm.setup("test")
    loaders["test"] = dm.test_dataloader()
    datasets, collate = {}, {}
    for name, loader in loaders.items():
        if isinstance(loader, (list, tuple)):
            if len(loader) != 1:
                raise DataError(f"{target}: its {name} loader is {len(loader)} loaders; dlexp reads one per split")
            loader = loader[0]
        if not hasattr(loader, "dataset"):
            raise DataError(f"{target}: its {name} loader is a {type(loader).__name__}, not a DataLoader")
        datasets[name] = loader.dataset
        collate[name] = getattr(loader, "collate_fn", None)
    return datasets, collate


def _check(ds, name: str, target: str) -> None:
    try:
        n = len(ds)
    except TypeError:
        raise DataError(f"the '{name}' split from {target}() has no length: dlexp reads map-style Datasets "
                        "(with __len__ and __getitem__), not iterable ones") from None
    if n == 0:
        raise DataError(f"the '{name}' split from {target}() is empty; every split needs at least one (x, y) item")
    item = ds[0]
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise DataError(f"the items of the '{name}' split from {target}() must be (x, y) pairs; "
                        f"item 0 is {_kind(item)}")


def _kind(item) -> str:
    if isinstance(item, (tuple, list)):
        return f"a {type(item).__name__} of {len(item)}"
    return f"of type {type(item).__name__}"


def _describe(datasets: dict, collate: dict, data_cfg, target: str, *, seed: int) -> DataSplits:
    """Task, classes, input shape and target scale from the first training item and a sample of labels."""
    import torch

    train = datasets["train"]
    x0 = torch.as_tensor(train[0][0])
    n = len(train)
    rows = np.arange(n) if n <= LABEL_SAMPLE else np.sort(np.random.default_rng(seed).choice(n, LABEL_SAMPLE,
                                                                                              replace=False))
    labels = np.asarray([np.asarray(train[int(i)][1]) for i in rows])
    task = str(getattr(data_cfg.task, "value", data_cfg.task))
    if task == "auto":
        task = "classification" if np.issubdtype(labels.dtype, np.integer) else "regression"
    described = {"target": target, "inferred_from": f"{len(rows)} training items"}
    if task == "classification":
        if not np.issubdtype(labels.dtype, np.integer) and not np.all(labels == np.round(labels)):
            raise DataError(f"data.task=classification needs integer labels; the 'train' split from {target}() "
                            f"has labels like {labels.flat[0]!r}")
        k = int(data_cfg.n_classes) if data_cfg.get("n_classes") else int(labels.max()) + 1
        if k < 2:
            raise DataError(f"the training labels from {target}() hold a single class; set data.n_classes=K")
        return DataSplits(datasets, k, tuple(x0.shape), collate=collate, description=described,
                          needs_human=f"data={target}")
    y = labels.astype(np.float64).reshape(len(labels), -1)[:, 0]
    metric = str(getattr(data_cfg.metric, "value", data_cfg.metric))
    std = float(y.std()) or 1.0
    spread = float(np.mean(np.abs(y - np.median(y)))) if metric == "mae" else float(y.std())
    return DataSplits(datasets, 1, tuple(x0.shape), task="regression", metric=metric, target_mean=float(y.mean()),
                      target_std=std, collate=collate, description=described, needs_human=f"data={target}",
                      spread=spread)


def sample_rows(n: int, cap: int | None, *, seed: int) -> np.ndarray | None:
    """A seeded sample of at most `cap` of `n` indices, sorted (None: all of them)."""
    if not cap or n <= cap:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, int(cap), replace=False))
