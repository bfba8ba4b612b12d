"""The LightningModule that trains any dlexp network (classification or regression), and its in-memory data."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytorch_lightning as L
import torch
from torch import nn
from torch.nn import functional as F


class Batches:
    """Mini-batches sliced from tensors that already sit on the training device.

    A DataLoader over a TensorDataset collates sample by sample; slicing a shuffled index costs one gather
    per step. Each epoch draws a fresh permutation from (seed, epoch), so every DDP rank sees the same
    order and takes its own stride of it. `epoch` and `position` read the trainer's own progress (the epoch
    under way, the items of it already trained), so the order survives a resume: `state_dict` /
    `load_state_dict` make this a resumable loader for Lightning, which restores mid-epoch exactly.
    `augment` (images): each shuffled batch is warped at random (dlexp/models/augment.py), on the device.

    `steps` > 1 (shuffled loaders): each item holds `steps` consecutive mini-batches (one gather), which
    `Classifier.training_step` trains as `steps` optimizer steps, so that Lightning's fixed cost per
    `training_step` call is spread over that many steps. `position` in the state counts mini-batches, so a
    checkpoint means the same place whatever `steps` was. `limit`: train on the first `limit` mini-batches
    of each epoch only (`trainer.limit_train_batches` as a count).
    `weights` (data.reweight): each epoch draws its n rows with replacement in proportion to them instead of
    a permutation (what torch's WeightedRandomSampler does, by inverse CDF: any number of rows), from the same
    (seed, epoch) generator.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool,
                 seed: int = 0, rank: int = 0, world_size: int = 1,
                 epoch: Callable[[], int] | None = None, position: Callable[[], int] | None = None,
                 augment: dict | None = None, steps: int = 1, limit: int | None = None,
                 weights: torch.Tensor | None = None):
        self.x, self.y, self.batch_size = x, y, batch_size
        self._cdf = None if weights is None else weights.double().cumsum(0)
        self.augment = augment
        self.shuffle, self.seed, self.rank, self.world_size = shuffle, seed, rank, world_size
        self.steps = max(1, int(steps)) if shuffle else 1
        self.limit = limit
        self._epoch_fn, self._position_fn = epoch, position
        self.epoch = 0          # the epoch whose permutation the next iteration draws
        self._skip = 0          # mini-batches of that epoch already trained before a resume

    def _local(self) -> int:
        if self.shuffle and self.world_size > 1:  # DDP: every rank takes as many batches (see __iter__)
            return len(self.y) // self.world_size
        return len(range(self.rank, len(self.y), self.world_size))

    def batches(self) -> int:
        """Mini-batches (optimizer steps) in one epoch."""
        n = math.ceil(self._local() / self.batch_size)
        return n if self.limit is None else min(n, self.limit)

    def __len__(self) -> int:
        return math.ceil(self.batches() / self.steps)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch - 1 if self._epoch_fn is None else self._epoch_fn(),
                "position": min(self.batches(), self.steps * self._position_fn()) if self._position_fn else 0}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self._skip = int(state["epoch"]), int(state["position"])

    def __iter__(self):
        n = len(self.y)
        skip, self._skip = self._skip, 0
        if self.shuffle:
            if self._epoch_fn is not None:
                self.epoch = self._epoch_fn()
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            # under DDP each rank takes its stride of the first n - n % world_size: equal batch counts, so
            # no rank waits in a gradient sync that another never joins (the few left over vary by epoch)
            order = (torch.randperm(n, generator=g) if self._cdf is None else
                     torch.searchsorted(self._cdf, torch.rand(n, generator=g, dtype=torch.float64) * self._cdf[-1])
                     .clamp_(max=n - 1))
            index = order[:n - n % self.world_size][self.rank::self.world_size]
            index = index[:self.batches() * self.batch_size].to(self.x.device)
            self.epoch += 1
            warp = None
            if self.augment:
                from dlexp.models.augment import random_affine

                warp = torch.Generator().manual_seed(g.initial_seed() + 7919 * (self.rank + 1))
            chunk = self.steps * self.batch_size
            for i in range(skip * self.batch_size, len(index), chunk):
                rows = index[i:i + chunk]
                x = self.x[rows]
                yield (x if warp is None else random_affine(x, warp, **self.augment)), self.y[rows]
        else:
            for i in range(self.rank, n, self.batch_size * self.world_size):
                yield self.x[i:i + self.batch_size], self.y[i:i + self.batch_size]


class InMemoryData(L.LightningDataModule):
    """Hands Lightning the training and dev splits as on-device `Batches`; tensors move to the device once."""

    def __init__(self, splits, *, batch_size: int, seed: int, eval_batch_size: int = 4096, steps: int = 1,
                 limit: int | None = None):
        super().__init__()
        self.splits, self.batch_size, self.seed, self.eval_batch_size = splits, batch_size, seed, eval_batch_size
        self.steps, self.limit = steps, limit

    def _tensors(self, split):
        device = self.trainer.strategy.root_device
        return torch.from_numpy(split.x).to(device), torch.from_numpy(split.y).to(device)

    def train_dataloader(self):
        x, y = self._tensors(self.splits.train)
        trainer = self.trainer
        return Batches(x, y, self.batch_size, shuffle=True, seed=self.seed,
                       rank=trainer.global_rank, world_size=trainer.world_size,
                       epoch=lambda: trainer.current_epoch,
                       position=lambda: trainer.fit_loop.epoch_loop.batch_progress.current.completed,
                       augment=dict(self.splits.augment) if self.splits.augment else None,
                       steps=self.steps, limit=self.limit,
                       weights=None if self.splits.train_weights is None
                       else torch.from_numpy(self.splits.train_weights))

    def val_dataloader(self):
        x, y = self._tensors(self.splits.dev)
        return Batches(x, y, self.eval_batch_size, shuffle=False)


class Objective:
    """The loss to train on and the error to report, for one task.

    Classification: cross-entropy; error = share of wrong argmax. Regression: the network predicts the
    standardized target (y - mean) / std with a mean squared error; errors (RMSE or MAE) are in y's unit.
    Language model (lm): cross-entropy of each next token, padding (0) left out; error = share of wrong next
    tokens, counted over the real ones (`count`).
    `error_sum` returns an on-device tensor so that no step waits for the device; `finish` turns the sum
    over n examples into the error.
    """

    def __init__(self, task: str = "classification", metric: str = "error_rate", mean: float = 0.0,
                 std: float = 1.0):
        self.task, self.metric, self.mean, self.std = task, metric, float(mean), float(std)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "regression":
            return F.mse_loss(out.squeeze(-1), (y - self.mean) / self.std)
        if self.task == "lm":  # out (B, L, vocab), y (B, L)
            return F.cross_entropy(out.flatten(0, 1), y.flatten(), ignore_index=0)
        return F.cross_entropy(out, y)

    def error_sum(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "regression":
            diff = out.squeeze(-1).float() * self.std + self.mean - y
            return diff.abs().sum() if self.metric == "mae" else (diff * diff).sum()
        if self.task == "lm":
            return ((out.argmax(dim=-1) != y) & (y != 0)).sum()
        return (out.argmax(dim=1) != y).sum()

    def count(self, y: torch.Tensor):
        """How many predictions `error_sum` scored: examples, or the real next tokens of a language model."""
        return (y != 0).sum() if self.task == "lm" else len(y)

    def finish(self, total, n: int):
        value = total / max(1, n)
        if self.task == "regression" and self.metric == "rmse":
            value = value ** 0.5
        return value


class Classifier(L.LightningModule):
    """Cross-entropy (or, for regression, squared-error) training with manual optimization steps.

    Lightning's automatic optimization wraps each step in a closure and hook calls that cost ~45% of the
    step time on small models; the manual step below does what a bare PyTorch loop does, while Lightning
    still owns devices, precision, strategies, checkpoints and callbacks.

    One `training_step` call trains `step_size`-row mini-batches one after another over the rows it is
    given (several consecutive mini-batches from `Batches(steps=...)`): one optimizer step each, through
    Lightning's optimizer wrapper, so the global step, `max_steps`, precision and checkpoints count
    optimizer steps as usual, while Lightning's own loop runs once per call.
    """

    def __init__(self, net: nn.Module, optimizer: dict, config: dict | None = None,
                 objective: Objective | None = None, step_size: int | None = None):
        super().__init__()
        self.net = net
        self.objective = objective or Objective()
        self.optimizer_cfg = dict(optimizer)
        self.step_size = step_size  # rows per optimizer step; None: the whole batch
        self.automatic_optimization = False
        self.save_hyperparameters({"config": config or {}, "optimizer": self.optimizer_cfg})
        self.diverged_at: int | None = None
        self._check_every = 1
        self._steps_done = 0
        self._plain: bool | None = None  # decided at the first step (see `_plain_steps`)

    def forward(self, x):
        return self.net(x)

    def configure_optimizers(self):
        o = self.optimizer_cfg
        if o["name"] == "sgd":
            return torch.optim.SGD(self.parameters(), lr=o["lr"], momentum=o.get("momentum", 0.0),
                                   nesterov=o.get("nesterov", False), weight_decay=o.get("weight_decay", 0.0))
        return torch.optim.Adam(self.parameters(), lr=o["lr"], weight_decay=o.get("weight_decay", 0.0))

    def on_train_start(self):
        # checking for a non-finite loss syncs with the device: every step on CPU, every 25 on accelerators
        self._check_every = 1 if self.device.type == "cpu" else 25
        if not hasattr(self, "loss_sum"):  # resumed mid-epoch: on_train_epoch_start is not called again
            self.on_train_epoch_start()
        if hasattr(self, "_restored_loss"):
            self.loss_sum += self._restored_loss[0]
            self.loss_steps = self._restored_loss[1]
            del self._restored_loss

    def on_train_epoch_start(self):
        self.loss_sum = torch.zeros((), device=self.device)
        self.loss_steps = 0

    def on_save_checkpoint(self, checkpoint):
        # the running epoch loss as plain numbers, so a mid-epoch resume reports the same epoch loss
        if hasattr(self, "loss_sum"):
            checkpoint["dlexp_epoch_loss"] = [float(self.loss_sum), int(self.loss_steps)]

    def on_load_checkpoint(self, checkpoint):
        if "dlexp_epoch_loss" in checkpoint:
            self._restored_loss = checkpoint["dlexp_epoch_loss"]

    def training_step(self, batch, batch_idx):
        x, y = batch
        opt = self.optimizers()
        size = self.step_size or len(y)
        clip = self.optimizer_cfg.get("grad_clip")
        max_steps = self.trainer.max_steps
        plain = self._plain if self._plain is not None else self._plain_steps(opt)
        for i in range(0, len(y), size):
            loss = self.objective.loss(self.net(x[i:i + size]), y[i:i + size])
            self.loss_sum += loss.detach()
            self.loss_steps += 1
            self._steps_done += 1
            if self._steps_done % self._check_every == 0 and not torch.isfinite(self.loss_sum):
                self.diverged_at = self.global_step
                self.trainer.should_stop = True
                return None
            opt.zero_grad(set_to_none=True)
            if plain:  # what a bare loop does, with Lightning's own step count (global_step, max_steps)
                loss.backward()
                opt._on_before_step()
                opt.optimizer.step()
                opt._on_after_step()
            else:
                self.manual_backward(loss)
                if clip:
                    self.clip_gradients(opt, gradient_clip_val=clip, gradient_clip_algorithm="norm")
                opt.step()
            if 0 < max_steps <= self.global_step:
                break
        return None

    def _plain_steps(self, opt) -> bool:
        """Whether backward and the optimizer step can skip Lightning's wrappers: one device, full precision, no
        gradient clipping, and no callback or hook that acts between backward and the step. The wrappers then
        only dispatch hooks that do nothing (a few per cent of a small model's step), while the step count
        that `global_step`, `max_steps` and checkpoints read still goes through Lightning's own counters."""
        from pytorch_lightning.plugins.precision import Precision
        from pytorch_lightning.strategies import SingleDeviceStrategy
        from pytorch_lightning.utilities.model_helpers import is_overridden

        hooks = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
        trainer = self.trainer
        self._plain = (type(trainer.strategy) is SingleDeviceStrategy and type(trainer.precision_plugin) is Precision
                       and not self.optimizer_cfg.get("grad_clip")
                       and hasattr(opt, "_on_before_step") and hasattr(opt, "_on_after_step")
                       and not any(is_overridden(h, self, L.LightningModule) for h in hooks)
                       and not any(is_overridden(h, cb, L.Callback) for cb in trainer.callbacks for h in hooks))
        return self._plain

    def train_loss(self) -> float:
        """Mean training loss over this epoch's steps (one device sync)."""
        return float(self.loss_sum) / max(1, self.loss_steps)

    def on_validation_epoch_start(self):
        self._wrong = torch.zeros((), device=self.device)
        self._seen = 0

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self._wrong = self._wrong + self.objective.error_sum(self.net(x), y)
        self._seen = self._seen + self.objective.count(y)

    def on_validation_epoch_end(self):
        # every rank measures the whole dev split (same weights, same value): the sync is an average of equals
        self.log("epoch/dev_error", self.objective.finish(self._wrong.float(), self._seen), prog_bar=True,
                 sync_dist=self.trainer.world_size > 1)
