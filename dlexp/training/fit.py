"""Fit a model with Lightning, then measure its error on the four splits in eval mode. No printing of results.

The only module (with models/) that imports torch and Lightning; `dlexp --help` and `dlexp diagnose` never
load it.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import shutil
import signal
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

warnings.filterwarnings("ignore", ".*LeafSpec.*")  # raised while Lightning itself is imported
import pytorch_lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO  # noqa: E402
from pytorch_lightning.callbacks import Callback, ModelCheckpoint  # noqa: E402
from pytorch_lightning.utilities.exceptions import SIGTERMException  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from dlexp import models
from dlexp.data import SPLIT_NAMES, Splits
from dlexp.errors import TrainingError
from dlexp.training import kit
from dlexp.training.signals import Interrupted, Stopper
from dlexp.models.lit import Classifier, InMemoryData, Objective
from dlexp.tracking.store import scrub_tree

DEV_METRIC = "epoch/dev_error"

for _name in ("pytorch_lightning", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", ".*(does not have many workers|Checkpoint directory .* exists).*")


@dataclass
class FitResult:
    errors: dict[str, float]           # split -> error rate after training, eval mode
    history: list[dict] = field(default_factory=list)  # one dict per epoch: epoch, step, train_loss, dev_error
    diverged_at: int | None = None     # global step where the loss became non-finite
    checkpoint_dir: Path | None = None
    device: str = "cpu"
    # split -> (predicted class (n,), confidence = top softmax probability (n,)), numpy, from the same pass
    predictions: dict | None = None
    # regression: split -> per-example absolute error (n,) in the target's unit, numpy, from the same pass
    abs_errors: dict | None = None
    start: dict | None = None          # model.init_from: where the weights came from (see `start_from`)
    evals: dict | None = None          # split -> SplitEval (dlexp/training/evaluate.py): labels, fingerprints, ...
    own_steps: bool = False            # the user's LightningModule trained with its own steps and optimizers
    net: torch.nn.Module | None = None  # the evaluated network (its weights go into the run's model)
    pruned_at: int | None = None       # prune.against: the epoch at which it was stopped as clearly losing
    best_epoch: int | None = None      # early stopping: the epoch (1-based) whose weights were measured


class PruneLosing(Callback):
    """Stops training when Optuna's pruner says the run is clearly losing to `against` (dlexp/training/prune.py)."""

    def __init__(self, against: list[float], *, from_epoch: int, margin: float):
        from dlexp.training.prune import Rule

        self.rule, self.stopped_at = Rule(against, from_epoch=from_epoch, margin=margin), None

    def on_train_epoch_end(self, trainer, pl_module):
        dev = trainer.callback_metrics.get(DEV_METRIC)
        if trainer.sanity_checking or dev is None or self.stopped_at is not None:
            return
        if self.rule.report(trainer.current_epoch + 1, float(dev)) and trainer.current_epoch + 1 < trainer.max_epochs:
            self.stopped_at = trainer.current_epoch + 1
            trainer.should_stop = True


class EpochRecorder(Callback):
    """Keeps the per-epoch curve, prints one line per epoch when no progress bar shows, and forwards it.

    An epoch's row goes out once its checkpoint is written (Lightning runs the checkpoint callback after this
    one, so the row waits for the next epoch's start, the end of training, or a stop): an epoch that was
    printed and logged is one that `--resume` does not train again.
    """

    def __init__(self, *, print_lines: bool, on_epoch: Callable[[dict], None] | None,
                 train_loss: Callable[[], float] | None = None):
        self.history: list[dict] = []
        self.print_lines, self.on_epoch, self.train_loss = print_lines, on_epoch, train_loss
        self._pending: tuple[dict, int] | None = None

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        row = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step,
               "train_loss": self.train_loss() if self.train_loss else pl_module.train_loss()}
        dev = trainer.callback_metrics.get(DEV_METRIC)
        if dev is not None:
            row["dev_error"] = float(dev)
        self._pending = (row, trainer.max_epochs)

    def on_train_epoch_start(self, trainer, pl_module):
        self._emit()

    def on_train_end(self, trainer, pl_module):
        self._emit()

    def on_exception(self, trainer, pl_module, exception):
        try:
            self._emit()
        except Exception:  # the exception that stopped training says more
            pass

    def _emit(self) -> None:
        if self._pending is None:
            return
        (row, max_epochs), self._pending = self._pending, None
        self.history.append(row)
        if self.on_epoch is not None:
            self.on_epoch(row)  # first: once an epoch line is printed, its run exists and the epoch is sent
        if self.print_lines:
            dev_text = f"  dev_error {row['dev_error']:.4f}" if "dev_error" in row else ""
            print(f"epoch {row['epoch']}/{max_epochs}  train_loss {row['train_loss']:.4f}{dev_text}", flush=True)


class SafeCheckpointIO(TorchCheckpointIO):
    """Checkpoints written atomically and read back with `torch.load(weights_only=True)`, never anything else.

    Writing goes to a temporary file in the same folder, flushed to disk, then renamed over the target, so a
    crash or a kill mid-write leaves the previous `last.ckpt` whole. Reading refuses any pickled object that
    is not a tensor or a plain container (the config is stored as plain dicts), with one clear line.
    """

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_checkpoint(path, map_location=map_location)


class EpochCheckpoint(ModelCheckpoint):
    """`last.ckpt` at the end of every epoch (one atomic write), so that `--resume` after a crash or a kill -9
    loses at most the epoch in flight; `best.ckpt` (the lowest dev error) is a second name, a hard link, for
    the last.ckpt of its epoch rather than a second write."""

    def __init__(self, dirpath: Path):
        super().__init__(dirpath=dirpath, filename="best", monitor=DEV_METRIC, mode="min", save_last=True,
                         save_top_k=1, enable_version_counter=False)
        self._written: int | None = None  # the global step whose last.ckpt is on disk

    @property
    def state_key(self) -> str:  # ModelCheckpoint's own: checkpoints written before this class still resume
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def on_train_epoch_end(self, trainer, pl_module):
        super().on_train_epoch_end(trainer, pl_module)  # writes only when the dev error improved
        if self._should_save_on_train_epoch_end(trainer):
            self._save_every_epoch(trainer)

    def on_validation_end(self, trainer, pl_module):
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_every_epoch(trainer)

    def _save_every_epoch(self, trainer) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer, filepath) -> None:
        last = Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"
        if self._written != trainer.global_step:
            super()._save_checkpoint(trainer, str(last))
            self._written = trainer.global_step
        if Path(filepath) != last:  # the best so far: this epoch's last.ckpt under a second name
            if trainer.is_global_zero:
                _second_name(last, Path(filepath))
            trainer.strategy.barrier()


def _second_name(path: Path, name: Path) -> None:
    """`name` becomes a hard link to `path`, atomically (a copy where the file system has no hard links)."""
    tmp = name.with_name(f".{name.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, name)


def load_checkpoint(path, map_location=None) -> dict:
    """torch.load(weights_only=True), its failures as a TrainingError that names the file and the way out."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        refused = next((ln for ln in lines if "global" in ln.lower() and "weights only" not in ln.lower()), None)
        if refused is None:
            raise TrainingError(f"checkpoint {path} is damaged or not a checkpoint ({lines[0][:200] if lines else ''}); "
                                "resume from another run, or train again") from None
        raise TrainingError(f"refusing checkpoint {path}: it holds more than tensors and plain containers "
                            f"(tampered with, or not written by dlexp): {refused[:200]}") from None
    except Exception as exc:  # truncated, not a zip archive, ...
        raise TrainingError(f"checkpoint {path} is damaged or not a checkpoint ({type(exc).__name__}: "
                            f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}); "
                            "resume from another run, or train again") from None


class StopOnSignal(Callback):
    """Hands SIGINT/SIGTERM to Lightning's step-boundary stop while the loop runs; checkpoints where it stopped.

    Lightning checks its SIGTERM flag after each step and raises there; `on_exception` then writes
    last.ckpt, from which `dlexp train --resume` continues mid-epoch. No per-step hook.
    """

    def __init__(self, stopper: Stopper, last_path: Path, sigterm: type = SIGTERMException):
        self.stopper, self.last_path, self.sigterm = stopper, last_path, sigterm
        self.saved: str | None = None
        self.step: int | None = None

    def on_train_start(self, trainer, pl_module):
        self.stopper.graceful = True  # Lightning's SIGTERM handler is in place by now
        import threading

        if (trainer.world_size > 1 and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) not in (None, signal.SIG_DFL, signal.SIG_IGN)):
            # DDP: Lightning's SIGTERM handler broadcasts to the other ranks from inside the handler, which
            # deadlocks when the signal lands in another collective (a checkpoint's barrier), and its flag
            # stops rank 0 a step before the others. Here the handler only notes the signal, and every
            # rank learns of it at the same step boundary (on_train_batch_end): they stop together.
            def note(signum, frame):
                self.stopper.signum = self.stopper.signum or signum
                self._pending = True

            signal.signal(signal.SIGTERM, note)
        self._ddp = trainer.world_size > 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not getattr(self, "_ddp", False):
            return
        flag = torch.tensor([1.0 if getattr(self, "_pending", False) else 0.0], device=trainer.strategy.root_device)
        torch.distributed.all_reduce(flag)
        if flag.item() > 0:
            trainer._signal_connector.received_sigterm = True  # Lightning's own stop, on every rank at once

    def on_train_end(self, trainer, pl_module):
        self.stopper.graceful = False

    def on_exception(self, trainer, pl_module, exception):
        graceful, self.stopper.graceful = self.stopper.graceful, False
        self.step = trainer.global_step
        if graceful and isinstance(exception, self.sigterm):
            trainer.save_checkpoint(self.last_path)  # every rank calls it (a barrier); rank 0 writes it
            self.saved = str(self.last_path)


class Watch(Callback):
    """What dlexp reads from a user's own LightningModule, whose steps, logging and optimizers stay its own: the
    mean training loss of each epoch (from what `training_step` returns), a non-finite loss (training stops),
    and the dev error at each epoch's end through the module's `forward` in eval mode, which checkpoints and
    early stopping monitor. Checkpoints keep dlexp's config as their hyper-parameters, plain values only, so
    that they load with `weights_only=True` whatever the module saved (optimizer partials, networks)."""

    def __init__(self, dev_error: Callable[[], float], config: dict):
        self.dev_error, self.config = dev_error, config
        self.diverged_at: int | None = None
        self._sum, self._steps = None, 0

    def on_train_epoch_start(self, trainer, pl_module):
        self._sum, self._steps = torch.zeros((), device=pl_module.device), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            if self._sum is None:  # resumed mid-epoch: on_train_epoch_start is not called again
                self.on_train_epoch_start(trainer, pl_module)
            self._sum += loss.detach().float()
            self._steps += 1

    def train_loss(self) -> float:
        return float(self._sum) / max(1, self._steps) if self._sum is not None else float("nan")

    def on_train_epoch_end(self, trainer, pl_module):
        if self._steps and not math.isfinite(self.train_loss()):
            self.diverged_at = trainer.global_step
            trainer.should_stop = True
            return
        # no Lightning logging here: set where checkpoints, early stopping and schedulers look for it
        trainer.callback_metrics[DEV_METRIC] = torch.tensor(self.dev_error())

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        checkpoint["hyper_parameters"] = {"config": self.config}
        checkpoint.pop("datamodule_hyper_parameters", None)


# rows that one `training_step` call trains by default (several optimizer steps), and the most steps per call
ROWS_PER_CALL, MAX_STEPS_PER_CALL = 4096, 32


def steps_per_call(cfg: DictConfig) -> int:
    """Optimizer steps per `training_step` call: `trainer.steps_per_call`, or enough mini-batches for
    ~4096 rows (at most 32), so Lightning's fixed cost per call (its loop, hooks, signal check) is spread."""
    given = cfg.trainer.get("steps_per_call")
    if given:
        return int(given)
    return max(1, min(MAX_STEPS_PER_CALL, ROWS_PER_CALL // max(1, int(cfg.data.batch_size))))


def _trainer_kwargs(cfg: DictConfig, steps: int) -> tuple[dict, int | None]:
    """Lightning's Trainer options, and `limit_train_batches` as a count of mini-batches (None: not a count).

    A count is applied by `Batches` (mini-batches), and handed to Lightning in `training_step` calls."""
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg.trainer).items() if v is not None}
    kwargs.pop("enable_progress_bar", None)
    kwargs.pop("steps_per_call", None)
    limit = kwargs.get("limit_train_batches")
    count = None
    if limit is not None and float(limit) > 1:
        count = int(limit)
        kwargs["limit_train_batches"] = math.ceil(count / steps)
    return kwargs, count


def start_from(net: torch.nn.Module, cfg: DictConfig, splits: Splits, init: dict) -> dict:
    """Load `init`'s checkpoint (another run's weights) into `net`, then freeze its body if asked.

    `init`: what the tracking side fetched (tracking/transfer.py `source`): run_id, checkpoint, task and
    classes of the source run. The head starts fresh when the source predicted other things.
    """
    from dlexp.models.transfer import freeze_body, load_matching

    state = load_checkpoint(init["checkpoint"]).get("state_dict") or {}
    theirs, ours = init.get("classes"), (splits.description or {}).get("classes")
    new_head = init.get("task", "classification") != splits.task or (
        theirs is not None and ours is not None and list(map(str, theirs)) != list(map(str, ours)))
    found = load_matching(net, state, source=init["run_id"], new_head=new_head)
    start = {"run_id": init["run_id"], "loaded": len(found["loaded"]), "total": len(found["loaded"]) + len(found["new"]),
             "new": found["new"], "frozen": None, "tokenizer": init.get("tokenizer_reused", False)}
    if str(getattr(cfg.model.freeze, "value", cfg.model.freeze)) == "body":
        start["frozen"] = freeze_body(net)
    return start


def fit(cfg: DictConfig, splits: Splits, *, workdir: Path,
        on_epoch: Callable[[dict], None] | None = None, stopper: Stopper | None = None,
        resume_from: Path | None = None, init: dict | None = None) -> FitResult:
    """Train `cfg.model` on `splits.train` (dev error each epoch), then evaluate on all four splits.

    `resume_from`: a last.ckpt to continue from (Lightning restores weights, optimizer, epoch, step and the
    position in the epoch). A signal during training raises `Interrupted` after writing last.ckpt.
    `init`: another run's checkpoint to start from (model.init_from), fetched by the tracking side.
    """
    L.seed_everything(cfg.seed, workers=False, verbose=False)
    net = models.build(cfg.model, n_features=splits.n_features, n_classes=splits.n_classes,
                       input_shape=splits.input_shape, vocab=splits.vocab, data_name=cfg.data.name,
                       task=splits.task)
    start = start_from(net, cfg, splits, init) if init is not None and resume_from is None else None
    # plain dicts (weights_only loads them), without the password of any URL: checkpoints end up in the store
    config = scrub_tree(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    kit.quiet()
    package = kit.package_of(net)  # the user's own LightningModule: its steps and optimizers, its package's Trainer
    k = kit.kit(package or kit.PL)
    in_memory = isinstance(splits, Splits)  # else the user's own Datasets (data=custom), read through loaders
    cap = cfg.diagnosis.get("max_eval_examples")
    if package:
        module, watch = net, kit.adopt(Watch, k.package)(
            lambda: dev_error(net, splits, batch_size=cfg.data.batch_size, cap=cap, seed=cfg.seed), config)
    else:
        module = Classifier(net, OmegaConf.to_container(cfg.optimizer), config=config, objective=objective(splits),
                            step_size=cfg.data.batch_size)
        watch = None
    steps = steps_per_call(cfg) if in_memory and not package else 1
    trainer_kwargs, limit = _trainer_kwargs(cfg, steps)
    if in_memory:
        data = InMemoryData(splits, batch_size=cfg.data.batch_size, seed=cfg.seed, steps=steps, limit=limit,
                            **({"eval_batch_size": cfg.data.batch_size} if package else {}))
    else:
        from dlexp.training import loaders

        data = loaders.LoaderData(splits, batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers,
                                  seed=cfg.seed, max_eval_examples=cap)

    show_bar = cfg.trainer.enable_progress_bar
    if show_bar is None:
        show_bar = sys.stdout.isatty()
    from dlexp.training.jobs import in_ray_worker

    recorder = kit.adopt(EpochRecorder, k.package)(print_lines=not show_bar and not in_ray_worker(), on_epoch=on_epoch,
                                                   train_loss=watch.train_loss if watch else None)
    checkpoint_dir = workdir / "checkpoints"
    on_epoch_end = {"save_on_train_epoch_end": True} if package else {}  # where Watch sets the dev error
    callbacks: list[Callback] = [watch] if watch else []  # first: the recorder reads the dev error it sets
    # a user's LightningModule: its package's own ModelCheckpoint, last.ckpt written every epoch too
    keeper = (k.ModelCheckpoint(dirpath=checkpoint_dir, filename="best", monitor=DEV_METRIC, mode="min",
                                save_last=True, save_top_k=1, enable_version_counter=False, **on_epoch_end)
              if package else EpochCheckpoint(checkpoint_dir))
    callbacks += [recorder, keeper]
    stop = kit.adopt(StopOnSignal, k.package)(stopper or Stopper(), checkpoint_dir / "last.ckpt", k.SIGTERMException)
    callbacks.append(stop)
    if cfg.early_stopping.patience > 0:
        callbacks.append(k.EarlyStopping(monitor=DEV_METRIC, mode="min", patience=cfg.early_stopping.patience,
                                         min_delta=cfg.early_stopping.min_delta,
                                         **({"check_on_train_epoch_end": True} if package else {})))
    pruner = None
    if cfg.get("prune") is not None and cfg.prune.against:
        pruner = kit.adopt(PruneLosing, k.package)(list(cfg.prune.against), from_epoch=cfg.prune.from_epoch,
                                                   margin=cfg.prune.margin)
        callbacks.append(pruner)
    if show_bar:
        callbacks.append(k.RichProgressBar(leave=True))

    with warnings.catch_warnings():  # replaced by dlexp's own line below
        warnings.filterwarnings("ignore", ".*AMP with fp16 is not supported on CPU.*")
        trainer = k.Trainer(
            **trainer_kwargs,
            callbacks=callbacks,
            logger=False,                 # dlexp's tracking process logs to MLflow, off the training thread
            enable_progress_bar=show_bar,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=workdir,
            plugins=[kit.adopt(SafeCheckpointIO, k.package)()],
        )
    asked = str(cfg.trainer.precision or "")
    if asked.startswith("16") and str(trainer.precision).startswith("bf16"):
        print(f"dlexp: note: trainer.precision={asked} needs a GPU (no float16 autocast on CPU); this run trains "
              f"in {trainer.precision} instead", file=sys.stderr, flush=True)
    from dlexp.training import ddp

    ddp.attach(trainer, config=config, splits=splits, workdir=workdir, resume_from=resume_from)
    if package:  # the data as loaders: a datamodule of the other package would not be accepted
        data.trainer = trainer
        fit_data = {"train_dataloaders": data.train_dataloader(), "val_dataloaders": data.val_dataloader()}
    else:
        fit_data = {"datamodule": data}
    try:
        trainer.fit(module, **fit_data, ckpt_path=str(resume_from) if resume_from else None)
    except SystemExit:  # Lightning's SIGTERMException, or its sys.exit(1) after a hard KeyboardInterrupt
        if stop.stopper.signum is None:
            raise
        raise Interrupted(stop.stopper.signum, checkpoint=stop.saved, step=stop.step) from None
    except Interrupted as exc:  # a second Ctrl-C
        raise Interrupted(exc.signum, checkpoint=None, step=trainer.global_step) from None
    if stop.stopper.signum is not None:  # arrived after the last step: training is complete anyway
        raise Interrupted(stop.stopper.signum, checkpoint=str(checkpoint_dir / "last.ckpt"),
                          step=trainer.global_step)
    diverged = watch.diverged_at if watch else module.diverged_at
    best_epoch = None
    if cfg.early_stopping.patience > 0 and cfg.early_stopping.get("restore_best", True) and diverged is None:
        best_epoch = restore_best(module, keeper, recorder.history, quiet=in_ray_worker())
    evals, net_eval = {}, net if package else module.net
    if trainer.is_global_zero and in_memory:
        evals = measure(net_eval, splits, device=module.device, max_eval_examples=cap, seed=cfg.seed)
    elif trainer.is_global_zero:
        evals = loaders.measure(net_eval, splits, objective(splits), device=module.device,
                                batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers,
                                max_eval_examples=cap, seed=cfg.seed)
    errors, predictions, abs_errors = from_evals(evals, splits.task)
    return FitResult(errors, recorder.history, diverged, checkpoint_dir, str(module.device),
                     predictions=predictions, abs_errors=abs_errors, start=start, evals=evals,
                     own_steps=package is not None, net=net_eval if evals else None,
                     pruned_at=pruner.stopped_at if pruner else None, best_epoch=best_epoch)


def restore_best(module, keeper, history: list[dict], *, quiet: bool = False) -> int | None:
    """Early stopping: load the weights of the epoch with the lowest dev error (`keeper`'s best checkpoint) into
    `module`, as Keras' `restore_best_weights` does, rather than measure those of the last epoch, `patience`
    epochs past it. Returns that epoch (1-based), or None when the last epoch is the best or no best was kept."""
    path = getattr(keeper, "best_model_path", "")
    if not path or not Path(path).is_file() or not history:
        return None
    ckpt = load_checkpoint(path, map_location=module.device)
    epoch, last = int(ckpt.get("epoch", -1)) + 1, int(history[-1]["epoch"])
    if not 1 <= epoch < last:
        return None
    module.load_state_dict(ckpt["state_dict"])
    if not quiet:
        print(f"dlexp: early stopping: measured the weights of epoch {epoch} (lowest dev error), not of the last "
              f"epoch trained ({last})", flush=True)
    return epoch


def from_evals(evals: dict, task: str) -> tuple[dict, dict | None, dict | None]:
    """(errors, predictions, abs_errors) as `FitResult` keeps them, from each split's `SplitEval`."""
    errors = {name: e.error for name, e in evals.items()}
    if not evals:
        return errors, None, None
    if task == "classification":
        return errors, {name: (e.predicted, e.confidence) for name, e in evals.items()}, None
    return errors, None, {name: e.abs_errors for name, e in evals.items() if e.abs_errors is not None}


def objective(splits: Splits) -> Objective:
    return Objective(splits.task, splits.metric, splits.target_mean, splits.target_std)


@torch.inference_mode()
def dev_error(net: torch.nn.Module, splits, *, batch_size: int = 8192, cap: int | None = None, seed: int = 0) -> float:
    """The dev error of `net` (a user's LightningModule: its `forward`) in eval mode; its mode is restored.
    In-memory splits are sliced on the device; the user's own Datasets are read through a loader (sampled
    like the final pass when `diagnosis.max_eval_examples` is set)."""
    was_training, obj = net.training, objective(splits)
    device = next(net.parameters()).device
    net.eval()
    try:
        if not isinstance(splits, Splits):
            from dlexp.training import loaders
            from dlexp.training.evaluate import evaluate_loader

            ds, _ = loaders.sampled(splits, "dev", cap, seed=seed)
            dev = loaders.loader(ds, batch_size=batch_size, num_workers=0, collate=splits.collate.get("dev"))
            return evaluate_loader(net, dev, objective=obj, device=device).error
        x, y = torch.from_numpy(splits.dev.x).to(device), torch.from_numpy(splits.dev.y).to(device)
        total, scored = torch.zeros((), device=device, dtype=torch.float64), 0
        for i in range(0, len(y), batch_size):
            target = y[i:i + batch_size]
            total += obj.error_sum(net(x[i:i + batch_size]), target).double()
            scored = scored + obj.count(target)
        return float(obj.finish(total.item(), int(scored)))
    finally:
        net.train(was_training)


def measure(net: torch.nn.Module, splits: Splits, *, device, batch_size: int = 8192,
            max_eval_examples: int | None = None, seed: int = 0) -> dict:
    """One eval-mode pass over each in-memory split -> {split: SplitEval} (dlexp/training/evaluate.py).

    Each split's rows move to the device once and are sliced there; the errors, the predictions and
    confidences (classification) or per-example absolute errors (regression) come from the same logits, with
    one transfer per split. Fingerprints are those of the whole arrays (`outcomes.fingerprint`).
    `max_eval_examples`: each split's error on a seeded sample of at most that many rows.
    """
    from dlexp.tracking.outcomes import fingerprint
    from dlexp.training.evaluate import evaluate_arrays
    from dlexp.training.loaders import sample_arrays

    obj = objective(splits)
    out = {}
    for name in SPLIT_NAMES:
        split = getattr(splits, name)
        x, y, rows = sample_arrays(split.x, split.y, max_eval_examples, seed=seed, split=name)
        out[name] = evaluate_arrays(net, torch.from_numpy(np.ascontiguousarray(x)).to(device), y, objective=obj,
                                    device=device, fingerprint=fingerprint(x, y), batch_size=batch_size,
                                    keep_probabilities=name in ("dev", "test"))  # the wrong-label search reads them
        if rows is not None:
            out[name].rows, out[name].total = rows, len(split)
    return out
