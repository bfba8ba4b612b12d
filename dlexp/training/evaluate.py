"""One eval-mode pass over one split, batch by batch: its error and what the error analysis, the intervals and
the per-example outcomes need, from the same logits.

The same pass serves the built-in in-memory splits (slices of tensors already on the device) and any
iterable of `(x, y)` batches (a DataLoader over the user's own Dataset): inputs are never gathered into one
array. Results stay on the device until the split is done (one transfer per split); the labels and the
fingerprint are read batch by batch.

    result = evaluate_loader(net, loader, objective=Objective(), device="cpu")
    result.error, result.n, result.fingerprint
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from dlexp.models.lit import Objective


@dataclass
class SplitEval:
    """One split's eval-mode pass."""

    error: float                  # error rate (classification, lm) or RMSE/MAE in the target's unit (regression)
    n: int                        # examples scored
    labels: np.ndarray            # (n,) true labels / targets in the order scored; (n, seq_len) next tokens (lm)
    predicted: np.ndarray | None  # classification: predicted class (n,)
    confidence: np.ndarray | None  # classification: top softmax probability (n,)
    abs_errors: np.ndarray | None  # regression: |prediction - y| (n,) in the target's unit, float64
    fingerprint: str              # SHA-256 of the scored examples' inputs and labels (see `Fingerprint`)
    rows: np.ndarray | None = None  # dataset indices scored, when a sample was scored; None: the whole split
    total: int | None = None      # the split's size when a sample was scored
    probabilities: np.ndarray | None = None  # classification, when asked: the full softmax (n, n_classes)
    residuals: np.ndarray | None = None  # regression: prediction - y (n,) in the target's unit, float64


class Fingerprint:
    """SHA-256 of a split's inputs and labels, fed batch by batch: the same digest as
    `dlexp.tracking.outcomes.fingerprint(x, y)` over the whole arrays, when `n` (the number of examples
    that will be fed) is known up front; `n=None` writes -1 in its place (a digest of its own kind).

    Inputs go into the hash as they come; labels are kept (they are small) and hashed at the end, since the
    whole-array digest puts all inputs before all labels.

    >>> from dlexp.tracking.outcomes import fingerprint
    >>> x, y = np.arange(12, dtype=np.float32).reshape(6, 2), np.array([0, 1, 1, 0, 2, 2])
    >>> f = Fingerprint(6)
    >>> for i in range(0, 6, 4):
    ...     f.update(x[i:i + 4])
    >>> f.finish(y) == fingerprint(x, y)
    True
    """

    def __init__(self, n: int | None):
        self.n = -1 if n is None else int(n)
        self.hash = hashlib.sha256()
        self.started = False

    def update(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x)
        if not self.started:  # the header of the whole array: dtype and shape (n, *item)
            self.hash.update(f"{x.dtype.str}{(self.n, *x.shape[1:])};".encode())
            self.started = True
        self.hash.update(memoryview(x).cast("B"))

    def finish(self, y: np.ndarray) -> str:
        if not self.started:  # an empty split: the header of an empty array
            self.hash.update(f"{np.dtype(np.float32).str}{(0,)};".encode())
        y = np.ascontiguousarray(y)
        self.hash.update(f"{y.dtype.str}{y.shape};".encode())
        self.hash.update(memoryview(y).cast("B"))
        return self.hash.hexdigest()


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


@torch.inference_mode()
def evaluate_batches(forward: Callable, batches: Iterable, *, objective: Objective, device,
                     n: int | None = None, labels: np.ndarray | None = None,
                     fingerprint: str | None = None, keep_probabilities: bool = False) -> SplitEval:
    """The pass itself: `batches` yields `(x, y)` (tensors or arrays; moved to `device` here).

    `n`: how many examples `batches` holds, when known (the fingerprint's header). An in-memory split passes
    its `labels` and `fingerprint` (already known: nothing is read back or hashed again).
    """
    regression, classification = objective.task == "regression", objective.task == "classification"
    total = torch.zeros((), device=device, dtype=torch.float64)
    scored = 0
    preds, confs, diffs, ys, probs = [], [], [], [], []
    prints = Fingerprint(n) if fingerprint is None else None
    for x, y in batches:
        if prints is not None:
            prints.update(_numpy(x))
        if labels is None:
            ys.append(_numpy(y))
        x = torch.as_tensor(x).to(device, non_blocking=True)
        y = torch.as_tensor(y).to(device, non_blocking=True)
        out = forward(x)
        scored = scored + objective.count(y)  # examples; real next tokens for a language model
        if classification:
            prob = torch.softmax(out.float(), dim=1)
            conf, pred = prob.max(dim=1)
            if keep_probabilities:
                probs.append(prob)
            preds.append(pred)
            confs.append(conf)
            total += (pred != y).sum().double()
        elif regression:  # the same arithmetic as Objective.error_sum, kept per example
            diff = out.squeeze(-1).float() * objective.std + objective.mean - y  # signed: the outlier search
            diffs.append(diff)
            total += (diff.abs() if objective.metric == "mae" else diff * diff).sum().double()
        else:
            total += objective.error_sum(out, y).double()
    if labels is None:
        labels = np.concatenate(ys) if ys else np.zeros(0, dtype=np.int64)
    error = float(objective.finish(total.item(), int(scored))) if len(labels) else 0.0
    predicted = confidence = abs_errors = residuals = None
    if classification:
        predicted = torch.cat(preds).cpu().numpy() if preds else np.zeros(0, dtype=np.int64)
        confidence = torch.cat(confs).cpu().numpy() if confs else np.zeros(0, dtype=np.float32)
    elif regression:
        residuals = torch.cat(diffs).double().cpu().numpy() if diffs else np.zeros(0, dtype=np.float64)
        abs_errors = np.abs(residuals)
    result = SplitEval(error, len(labels), labels, predicted, confidence, abs_errors,
                       fingerprint if fingerprint is not None else prints.finish(labels), residuals=residuals)
    if probs:
        result.probabilities = torch.cat(probs).cpu().numpy()
    return result


def evaluate_loader(forward: Callable, loader: Iterable, *, objective: Objective, device,
                    max_batches: int | None = None, rows: np.ndarray | None = None,
                    total: int | None = None, keep_probabilities: bool = False) -> SplitEval:
    """Score `forward(x) -> logits` (or one output per example for regression) over `loader`'s `(x, y)`
    batches in eval mode; `max_batches` stops after that many.

    `rows`/`total`: the dataset indices `loader` reads and the split's full size, when it reads a sample
    (`diagnosis.max_eval_examples`); kept on the result. A `torch.nn.Module` is put in eval mode first.
    """
    if isinstance(forward, torch.nn.Module):
        forward.eval()
    n = _size(loader)
    batches: Iterable = loader
    if max_batches is not None:
        import itertools

        batches = itertools.islice(loader, max_batches)
        bs = getattr(loader, "batch_size", None)
        n = min(n, max_batches * bs) if n is not None and bs else None
    result = evaluate_batches(forward, batches, objective=objective, device=device, n=n,
                              keep_probabilities=keep_probabilities)
    result.rows, result.total = rows, total
    return result


def _size(loader) -> int | None:
    """How many examples a loader yields, when it says: its sampler's length, else its dataset's."""
    for part in (getattr(loader, "sampler", None), getattr(loader, "dataset", None)):
        try:
            return len(part)
        except TypeError:
            continue
    return None


def evaluate_arrays(net: torch.nn.Module, x: torch.Tensor, y: np.ndarray, *, objective: Objective, device,
                    fingerprint: str, batch_size: int = 8192, keep_probabilities: bool = False) -> SplitEval:
    """The built-in in-memory split: `x` already on `device`, sliced; its labels `y` and fingerprint known."""
    net.eval()
    y_dev = torch.from_numpy(y).to(device)
    batches = ((x[i:i + batch_size], y_dev[i:i + batch_size]) for i in range(0, len(y), batch_size))
    return evaluate_batches(net, batches, objective=objective, device=device, labels=y, fingerprint=fingerprint,
                            keep_probabilities=keep_probabilities)
