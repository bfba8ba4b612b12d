"""Fit a model with Lightning, then measure its error on the four splits in eval mode. No printing of results.

The only module (with models/) that imports torch and Lightning; `dlexp --help` and `dlexp diagnose` never
load it.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
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
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint  # noqa: E402
from pytorch_lightning.utilities.exceptions import SIGTERMException  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from dlexp import models
from dlexp.data import SPLIT_NAMES, Splits
from dlexp.errors import TrainingError
from dlexp.training.signals import Interrupted, Stopper
from dlexp.models.lit import Classifier, InMemoryData, Objective
from dlexp.tracking.store import redact

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
    probabilities: dict | None = None  # classification: dev and test -> full softmax (n, n_classes), numpy


class EpochRecorder(Callback):
    """Keeps the per-epoch curve, prints one line per epoch when no progress bar shows, and forwards it."""

    def __init__(self, *, print_lines: bool, on_epoch: Callable[[dict], None] | None):
        self.history: list[dict] = []
        self.print_lines, self.on_epoch = print_lines, on_epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        row = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step,
               "train_loss": pl_module.train_loss()}
        dev = trainer.callback_metrics.get(DEV_METRIC)
        if dev is not None:
            row["dev_error"] = float(dev)
        self.history.append(row)
        if self.on_epoch is not None:
            self.on_epoch(row)  # first: once an epoch line is printed, its run exists and the epoch is sent
        if self.print_lines:
            dev_text = f"  dev_error {row['dev_error']:.4f}" if "dev_error" in row else ""
            print(f"epoch {row['epoch']}/{trainer.max_epochs}  train_loss {row['train_loss']:.4f}{dev_text}",
                  flush=True)


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

    def __init__(self, stopper: Stopper, last_path: Path):
        self.stopper, self.last_path = stopper, last_path
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
        if graceful and isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.last_path)  # every rank calls it (a barrier); rank 0 writes it
            self.saved = str(self.last_path)


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
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # plain dicts: weights_only loads it
    if (config.get("tracking") or {}).get("uri"):
        config["tracking"]["uri"] = redact(config["tracking"]["uri"])  # checkpoints end up in the store
    module = Classifier(net, OmegaConf.to_container(cfg.optimizer), config=config, objective=objective(splits),
                        step_size=cfg.data.batch_size)
    steps = steps_per_call(cfg)
    trainer_kwargs, limit = _trainer_kwargs(cfg, steps)
    data = InMemoryData(splits, batch_size=cfg.data.batch_size, seed=cfg.seed, steps=steps, limit=limit)

    show_bar = cfg.trainer.enable_progress_bar
    if show_bar is None:
        show_bar = sys.stdout.isatty()
    from dlexp.training.launch import in_ray_worker

    recorder = EpochRecorder(print_lines=not show_bar and not in_ray_worker(), on_epoch=on_epoch)
    checkpoint_dir = workdir / "checkpoints"
    callbacks: list[Callback] = [
        recorder,
        ModelCheckpoint(dirpath=checkpoint_dir, filename="best", monitor=DEV_METRIC, mode="min",
                        save_last="link", save_top_k=1, enable_version_counter=False),
    ]
    stop = StopOnSignal(stopper or Stopper(), checkpoint_dir / "last.ckpt")
    callbacks.append(stop)
    if cfg.early_stopping.patience > 0:
        callbacks.append(EarlyStopping(monitor=DEV_METRIC, mode="min", patience=cfg.early_stopping.patience,
                                       min_delta=cfg.early_stopping.min_delta))
    if show_bar:
        from pytorch_lightning.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=True))

    with warnings.catch_warnings():  # replaced by dlexp's own line below
        warnings.filterwarnings("ignore", ".*AMP with fp16 is not supported on CPU.*")
        trainer = L.Trainer(
            **trainer_kwargs,
            callbacks=callbacks,
            logger=False,                 # dlexp's tracking process logs to MLflow, off the training thread
            enable_progress_bar=show_bar,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=workdir,
            plugins=[SafeCheckpointIO()],
        )
    asked = str(cfg.trainer.precision or "")
    if asked.startswith("16") and str(trainer.precision).startswith("bf16"):
        print(f"dlexp: note: trainer.precision={asked} needs a GPU (no float16 autocast on CPU); this run trains "
              f"in {trainer.precision} instead", file=sys.stderr, flush=True)
    from dlexp.training import ddp

    ddp.attach(trainer, config=config, splits=splits, workdir=workdir, resume_from=resume_from)
    try:
        trainer.fit(module, datamodule=data, ckpt_path=str(resume_from) if resume_from else None)
    except SystemExit:  # Lightning's SIGTERMException, or its sys.exit(1) after a hard KeyboardInterrupt
        if stop.stopper.signum is None:
            raise
        raise Interrupted(stop.stopper.signum, checkpoint=stop.saved, step=stop.step) from None
    except Interrupted as exc:  # a second Ctrl-C
        raise Interrupted(exc.signum, checkpoint=None, step=trainer.global_step) from None
    if stop.stopper.signum is not None:  # arrived after the last step: training is complete anyway
        raise Interrupted(stop.stopper.signum, checkpoint=str(checkpoint_dir / "last.ckpt"),
                          step=trainer.global_step)
    predictions, errors, probabilities = None, {}, None
    if trainer.is_global_zero and splits.task == "classification":
        # one pass gives both the error rates and what the error analysis needs
        probabilities = {}  # dev and test's full softmax: the label-issue search reads it
        predictions = predict(module.net, splits, device=module.device, probabilities=probabilities)
        errors = {name: float((pred != getattr(splits, name).y).mean()) if len(pred) else 0.0
                  for name, (pred, _) in predictions.items()}
    abs_errors = None
    if trainer.is_global_zero and splits.task != "classification":
        errors, abs_errors = evaluate(module.net, splits, device=module.device)
    return FitResult(errors, recorder.history, module.diverged_at, checkpoint_dir, str(module.device),
                     predictions=predictions, abs_errors=abs_errors, start=start, probabilities=probabilities)


def objective(splits: Splits) -> Objective:
    return Objective(splits.task, splits.metric, splits.target_mean, splits.target_std)


@torch.inference_mode()
def predict(net: torch.nn.Module, splits: Splits, *, device, batch_size: int = 8192,
            probabilities: dict | None = None) -> dict:
    """One eval-mode pass over each split -> {split: (predicted class (n,), top probability (n,))} as numpy;
    `probabilities`, when given, receives dev and test's full softmax from the same pass.

    Both come from the same logits, so the errors and the error analysis cost a single pass; each batch's
    results stay on the device until the split is done (one transfer per split).
    """
    net.eval()
    out = {}
    for name in SPLIT_NAMES:
        split = getattr(splits, name)
        x = torch.from_numpy(split.x).to(device)
        preds, confs, probs = [], [], []
        keep = probabilities is not None and name in ("dev", "test")
        for i in range(0, len(x), batch_size):
            prob = torch.softmax(net(x[i:i + batch_size]).float(), dim=1)
            conf, pred = prob.max(dim=1)
            preds.append(pred)
            confs.append(conf)
            if keep:
                probs.append(prob)
        if probs:
            probabilities[name] = torch.cat(probs).cpu().numpy()
        if preds:
            out[name] = (torch.cat(preds).cpu().numpy(), torch.cat(confs).cpu().numpy())
        else:
            out[name] = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    return out


@torch.inference_mode()
def evaluate(net: torch.nn.Module, splits: Splits, *, device,
             batch_size: int = 8192) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Error on each split: a clean pass in eval mode, not the running average of the training loss.

    Returns (errors, abs_errors). Classification: the error rate; regression: RMSE or MAE in the target's
    unit (`splits.metric`). `abs_errors` maps split -> the per-example absolute error |prediction - y| in
    the target's unit (numpy float64, regression only; {} for classification), from the same pass: the
    bootstrap intervals need them.
    """
    net.eval()
    obj = objective(splits)
    regression = obj.task == "regression"
    errors, abs_errors = {}, {}
    for name in SPLIT_NAMES:
        split = getattr(splits, name)
        x = torch.from_numpy(split.x).to(device)
        y = torch.from_numpy(split.y).to(device)
        total = torch.zeros((), device=device, dtype=torch.float64)
        diffs, scored = [], 0
        for i in range(0, len(y), batch_size):
            out, target = net(x[i:i + batch_size]), y[i:i + batch_size]
            scored = scored + obj.count(target)  # examples; real next tokens for a language model
            if regression:  # the same arithmetic as Objective.error_sum, kept per example
                diff = (out.squeeze(-1).float() * obj.std + obj.mean - target).abs()
                diffs.append(diff)
                total += (diff if obj.metric == "mae" else diff * diff).sum().double()
            else:
                total += obj.error_sum(out, target).double()
        errors[name] = float(obj.finish(total.item(), int(scored)))
        if regression:  # one transfer per split
            abs_errors[name] = (torch.cat(diffs).double().cpu().numpy() if diffs
                                else np.zeros(0, dtype=np.float64))
    return errors, abs_errors
