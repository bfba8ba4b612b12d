"""dlexp's diagnosis in the user's own Lightning script: `Trainer(callbacks=[Diagnose(human_error=0.01, ...)])`.

At the end of `fit` the callback measures the four errors in eval mode (train: the training loader read in
order; train-dev: the loader given; dev: the trainer's val loader; test: the loader given or the datamodule's
`test_dataloader`), prints dlexp's diagnosis and records the run as `dlexp train` does: into the run of the
trainer's `MLFlowLogger` when it has one (its status stays the logger's), else into a run of dlexp's store
(`tracking_uri=`, else $DLEXP_TRACKING_URI, else runs/mlflow.db). MLflow loads in the tracking process
(see tracking/recorder.py), never in the training process. `dlexp diagnose RUN`, `dlexp compare`,
`dlexp runs` and `dlexp report` then read that run.

It works in a Trainer of either package, `pytorch_lightning` or `lightning` (`import lightning as L`): the
Trainer calls its hooks by name. The model's `forward(x)` gives one logit per class; batches are `(x, y)`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch

from dlexp.diagnosis import Report, SplitErrors, check_error, diagnose, recommend
from dlexp.diagnosis.compare import Outcomes
from dlexp.errors import ConfigError, DlexpError
from dlexp.tracking import outcomes
from dlexp.tracking.store import redact, store_uri

_LIGHTNING = ("pytorch_lightning", "lightning")


class Diagnose(pl.Callback):
    """Diagnose the model at the end of `Trainer.fit`; `report` then holds the diagnosis (a `Report`).

    - `human_error`: the human-level error, or a range ``(lo, hi)`` from several annotators; None: no baseline.
    - `train_dev`: a loader over examples held out from the training distribution; without it the train-to-dev
      gap is judged as one gap (variance or mismatch).
    - `test`: the test loader (default: the datamodule's `test_dataloader`); `dev`, `train`: loaders that
      replace the trainer's val loader and the training loader read in order.
    - `tracking_uri`, `experiment`, `run_name`: where the run goes when the trainer has no `MLFlowLogger`.
    """

    def __init__(self, human_error: float | Sequence[float] | None = None, *, train_dev: Iterable | None = None,
                 test: Iterable | None = None, dev: Iterable | None = None, train: Iterable | None = None,
                 tolerance: float = 0.01, tracking_uri: str | None = None, experiment: str = "dlexp",
                 run_name: str | None = None):
        self.human, self.human_range = _human(human_error)
        if not tolerance >= 0:
            raise ConfigError(f"Diagnose(tolerance=...) must be a number >= 0, got {tolerance!r}")
        self.loaders = {"train": train, "train_dev": train_dev, "dev": dev, "test": test}
        self.tolerance, self.tracking_uri, self.experiment, self.run_name = tolerance, tracking_uri, experiment, run_name
        self.report: Report | None = None
        self._recorder = None
        self._attached = False
        self._history: list[dict] = []
        self._workdir: Path | None = None

    # ------------------------------------------------------------------------------------ the hooks

    def on_fit_start(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        datamodule = getattr(trainer, "datamodule", None)
        if self.loaders["test"] is None and not _overrides(datamodule, "test_dataloader"):
            raise ConfigError("Diagnose needs a test split: pass Diagnose(test=loader), or fit with a "
                              "LightningDataModule that has a test_dataloader")
        from dlexp.tracking.recorder import Recorder
        from dlexp.training.signals import process_start

        logger = next((lg for lg in trainer.loggers if type(lg).__name__ == "MLFlowLogger"), None)
        self._attached = logger is not None
        uri = logger.experiment.tracking_uri if logger is not None else store_uri(self.tracking_uri)
        model, data = type(pl_module).__name__, type(datamodule).__name__ if datamodule is not None else "dataloaders"
        self._names = (model, data)
        self._workdir = Path(tempfile.mkdtemp(prefix="dlexp-lightning-"))
        self._recorder = Recorder({
            "uri": uri, "experiment": self.experiment, "run_name": self.run_name or f"{model} · {data}",
            "attach_run_id": logger.run_id if logger is not None else None,
            "params": {"model": {"name": model}, "data": {"name": data}},
            "tags": {"dlexp.source": "lightning", "dlexp.pid_start": process_start(os.getpid()) or ""},
        }, log_path=self._workdir / "tracking.log")
        print(f"dlexp: diagnosing {model} on {data} at the end of fit; tracking to {redact(uri)}"
              + (" (the MLFlowLogger's run)" if logger is not None else ""), flush=True)

    def on_train_epoch_end(self, trainer, pl_module):
        if self._recorder is None or trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step}
        loss = next((v for k, v in trainer.callback_metrics.items() if "loss" in k and "val" not in k), None)
        if loss is not None:
            row["train_loss"] = float(loss)
        self._history.append(row)
        self._recorder.epoch(row)

    def on_train_end(self, trainer, pl_module):
        if self._recorder is None:
            return
        evals = self._measure(trainer, pl_module)
        self.report = self._report(evals)
        from dlexp.render import terminal

        terminal.diagnosis(self.report, title=f"{self._names[0]} on {self._names[1]}")
        artifacts = {str(self._workdir / "analysis"): "analysis"}
        kept = Outcomes("classification", "error_rate", {s: e.predicted != e.labels for s, e in evals.items()},
                        {s: e.fingerprint for s, e in evals.items()})
        outcomes.write(kept, self._workdir / outcomes.FOLDER)
        artifacts[str(self._workdir / outcomes.FOLDER)] = outcomes.FOLDER
        recorder, self._recorder = self._recorder, None
        try:
            recorder.finish("FINISHED", metrics=self.report.metrics(), tags=self.report.tags(),
                            document=self.report.document(), history=self._history, artifacts=artifacts,
                            cleanup=[str(self._workdir)])
        except DlexpError as exc:  # the model is trained and diagnosed: say what was not recorded, go on
            print(f"dlexp: warning: the diagnosis was not recorded: {exc}", file=sys.stderr, flush=True)

    def on_exception(self, trainer, pl_module, exception):
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        try:
            if self._attached:  # the logger ends its own run
                recorder.close(wait=False)
            else:
                status = "KILLED" if isinstance(exception, KeyboardInterrupt) else "FAILED"
                recorder.finish(status, tags={"dlexp.error": f"{type(exception).__name__}: {exception}"[:5000]})
        except DlexpError:
            pass
        shutil.rmtree(self._workdir, ignore_errors=True)

    # ------------------------------------------------------------------------------------ the work

    def _measure(self, trainer, pl_module) -> dict:
        """Each split's eval-mode pass (`dlexp.training.evaluate`), with the model's own train/eval mode restored."""
        from dlexp.models.lit import Objective
        from dlexp.training.evaluate import evaluate_batches

        loaders = dict(self.loaders)
        if loaders["train"] is None:
            loaders["train"] = _in_order(trainer.train_dataloader)
        if loaders["dev"] is None:
            val = trainer.val_dataloaders
            loaders["dev"] = val[0] if isinstance(val, (list, tuple)) and val else val
            if loaders["dev"] is None:
                raise ConfigError("Diagnose measures dev on the trainer's val loader: give the model or datamodule "
                                  "a val_dataloader, pass val_dataloaders to fit, or pass Diagnose(dev=loader)")
        if loaders["test"] is None:
            loaders["test"] = trainer.datamodule.test_dataloader()
        was_training = pl_module.training
        pl_module.eval()
        try:
            return {split: evaluate_batches(_logits(pl_module), _pairs(loader, split), objective=Objective(),
                                            device=pl_module.device, n=_length(loader))
                    for split, loader in loaders.items() if loader is not None}
        finally:
            pl_module.train(was_training)

    def _report(self, evals: dict) -> Report:
        errors = {s: (evals[s].error if s in evals else None) for s in ("train", "train_dev", "dev", "test")}
        sizes = {s: e.n for s, e in evals.items()}
        d = diagnose(SplitErrors(human=self.human or 0.0, **errors), tolerance=self.tolerance, sizes=sizes,
                     human_range=self.human_range, human_known=self.human is not None)
        return Report(d, recommend(d, None, train_size=sizes.get("train")), run_id=self._recorder.run_id,
                      sizes=sizes, baseline={"source": "given" if self.human is not None else "none"},
                      analysis=self._analysis(evals),
                      source={"tool": "lightning", "run_name": f"{self._names[0]} on {self._names[1]}"})

    def _analysis(self, evals: dict) -> dict:
        """Per-class errors, the classes rising most from train-dev to dev, the worst dev mistakes (a CSV)."""
        from dlexp.diagnosis import analysis

        n_classes = 1 + max(int(max(e.labels.max(initial=0), e.predicted.max(initial=0))) for e in evals.values())
        summary, rows = analysis.analyse({s: e.labels for s, e in evals.items()},
                                         {s: (e.predicted, e.confidence) for s, e in evals.items()}, n_classes)
        analysis.write_worst(rows, self._workdir / "analysis" / analysis.WORST_CSV)
        summary["worst_dev_csv"] = f"analysis/{analysis.WORST_CSV}"
        return summary


def _human(value) -> tuple[float | None, tuple[float, float] | None]:
    if value is None:
        return None, None
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) not in (1, 2):
        raise ConfigError(f"Diagnose(human_error=...) takes an error rate or a range (lo, hi), got {value!r}")
    for v in values:
        try:
            check_error("human", v)
        except ValueError as exc:
            raise ConfigError(f"Diagnose(human_error=...): {exc}") from None
    if len(values) == 1:
        return float(values[0]), None
    lo, hi = sorted(values)
    return (lo + hi) / 2, (lo, hi)


def _overrides(obj, name: str) -> bool:
    """Whether `obj`'s class (not Lightning's base class) defines `name`."""
    return obj is not None and any(name in vars(k) for k in type(obj).__mro__
                                   if k.__module__.split(".")[0] not in _LIGHTNING)


def _in_order(loader):
    """The training loader read in order, every example once: the same examples in the same order in every run,
    so that two runs can be compared example by example (`dlexp compare`)."""
    from torch.utils.data import DataLoader, IterableDataset

    if isinstance(loader, (list, tuple)) and loader:
        loader = loader[0]
    if isinstance(loader, DataLoader) and not isinstance(loader.dataset, IterableDataset) and loader.batch_size:
        return DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=False, drop_last=False,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn)
    return loader


def _length(loader) -> int | None:
    try:
        return len(loader.dataset)
    except (AttributeError, TypeError):
        return None


def _logits(module):
    def forward(x):
        out = module(x)
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ConfigError(f"Diagnose: the model's forward(x) must give logits of shape (batch, classes), got {shape}")
        return out

    return forward


def _pairs(loader: Iterable, split: str):
    for batch in loader:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise ConfigError(f"Diagnose: the {split} loader's batches must be (x, y) pairs, got "
                              f"{type(batch).__name__}{f' of {len(batch)}' if isinstance(batch, (tuple, list)) else ''}")
        x, y = batch
        if isinstance(y, torch.Tensor) and y.dim() != 1:
            raise ConfigError(f"Diagnose: the {split} loader's labels must be class indices (one per example), "
                              f"got shape {tuple(y.shape)}")
        yield x, y
