"""The user's own Datasets (data=custom) read through DataLoaders: training, the dev error each epoch, and the
eval pass over the four splits (sampled when `diagnosis.max_eval_examples` is set). Nothing is gathered into
one array; under DDP Lightning gives the training loader a DistributedSampler.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

from dlexp.data.custom import SPLITS, DataSplits, Rows, sample_rows
from dlexp.models.lit import Objective
from dlexp.training.evaluate import SplitEval, evaluate_loader


class Shuffled(Sampler):
    """A fresh seeded order of `n` indices each epoch (seed, epoch), handed out a chunk at a time.

    torch's RandomSampler turns the whole permutation into one Python list (some 36 bytes an index: 720 MB
    for 20 million rows); this keeps it as a tensor of 4-byte indices. Lightning sets the epoch."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g, dtype=torch.int32 if self.n < 2**31 else torch.int64)
        for chunk in order.split(65_536):
            yield from chunk.tolist()


def loader(dataset, *, batch_size: int, num_workers: int, collate=None, shuffle: bool = False,
           seed: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over `dataset`; shuffled ones draw their order from `seed` and the epoch (`Shuffled`)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=Shuffled(len(dataset), seed) if shuffle else None,
                      num_workers=num_workers, collate_fn=collate, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0)


def sampled(splits: DataSplits, name: str, cap: int | None, *, seed: int):
    """(the Dataset to score, the rows of it scored or None) for split `name`: a seeded sample of at most `cap`."""
    ds = splits.datasets[name]
    rows = sample_rows(len(ds), cap, seed=seed + SPLITS.index(name))
    return (ds, None) if rows is None else (Rows(ds, rows), rows)


class LoaderData(L.LightningDataModule):
    """Hands Lightning the user's training split (shuffled, seeded) and dev split (sampled when capped)."""

    def __init__(self, splits: DataSplits, *, batch_size: int, num_workers: int, seed: int,
                 max_eval_examples: int | None = None):
        super().__init__()
        self.splits, self.batch_size, self.num_workers, self.seed = splits, batch_size, num_workers, seed
        self.max_eval_examples = max_eval_examples

    def _pin(self) -> bool:
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def train_dataloader(self):
        return loader(self.splits.datasets["train"], batch_size=self.batch_size, num_workers=self.num_workers,
                      collate=self.splits.collate.get("train"), shuffle=True, seed=self.seed, pin_memory=self._pin())

    def val_dataloader(self):
        dev, _ = sampled(self.splits, "dev", self.max_eval_examples, seed=self.seed)
        return loader(dev, batch_size=self.batch_size, num_workers=self.num_workers,
                      collate=self.splits.collate.get("dev"), pin_memory=self._pin())


def measure(net: torch.nn.Module, splits: DataSplits, objective: Objective, *, device, batch_size: int,
            num_workers: int = 0, max_eval_examples: int | None = None, seed: int = 0) -> dict[str, SplitEval]:
    """One eval-mode pass over each split (or its seeded sample) -> {split: SplitEval}."""
    out = {}
    pin = torch.device(device).type == "cuda"
    for name in SPLITS:
        ds, rows = sampled(splits, name, max_eval_examples, seed=seed)
        out[name] = evaluate_loader(net, loader(ds, batch_size=batch_size, num_workers=num_workers,
                                                collate=splits.collate.get(name), pin_memory=pin),
                                    objective=objective, device=device, rows=rows,
                                    total=len(splits.datasets[name]) if rows is not None else None,
                                    keep_probabilities=name in ("dev", "test"))  # the wrong-label search
    return out


def sample_arrays(x: np.ndarray, y: np.ndarray, cap: int | None, *, seed: int, split: str):
    """The in-memory counterpart of `sampled`: (x, y, rows or None) of a seeded sample of at most `cap` rows."""
    rows = sample_rows(len(y), cap, seed=seed + SPLITS.index(split))
    return (x, y, None) if rows is None else (x[rows], y[rows], rows)
