"""The diagnosis core: four split errors against a human-level baseline -> gaps -> verdict -> actions.

Pure and stdlib-only: numbers and plain mappings in, frozen dataclasses out. It never imports torch,
Lightning, MLflow or rich, so `dlexp diagnose` stays fast and every rule here is testable by table.

>>> d = diagnose(SplitErrors(human=0.01, train=0.15, train_dev=0.155, dev=0.16, test=0.16))
>>> d.verdict, d.problems
('avoidable_bias', ('avoidable_bias',))
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

SPLITS = ("train", "train_dev", "dev", "test")
GAPS = ("avoidable_bias", "variance", "data_mismatch", "dev_overfitting")
VERDICTS = GAPS + ("within_tolerance", "diverged")

# gap name -> (the larger error, the smaller error): gap = errors[a] - errors[b]
GAP_TERMS = {
    "avoidable_bias": ("train", "human"),
    "variance": ("train_dev", "train"),
    "data_mismatch": ("dev", "train_dev"),
    "dev_overfitting": ("test", "dev"),
}

DEFAULT_TOLERANCE = 0.01
GENERATED_SOURCES = ("synthetic", "sequence")  # data sources that can draw more examples on request


@dataclass(frozen=True)
class SplitErrors:
    """Errors on the four splits and the human-level error, all in the same unit (an error rate here)."""

    human: float
    train: float
    train_dev: float
    dev: float
    test: float

    def as_dict(self) -> dict[str, float]:
        return {"human": self.human, "train": self.train, "train_dev": self.train_dev,
                "dev": self.dev, "test": self.test}


@dataclass(frozen=True)
class Gap:
    name: str
    value: float
    problem: bool


@dataclass(frozen=True)
class Diagnosis:
    errors: SplitErrors
    gaps: tuple[Gap, ...]
    verdict: str
    problems: tuple[str, ...]  # gap names at or above tolerance, largest first
    tolerance: float
    notes: tuple[str, ...] = ()
    diverged_at: int | None = None  # global step where the loss became non-finite

    def gap(self, name: str) -> Gap:
        return next(g for g in self.gaps if g.name == name)


@dataclass(frozen=True)
class Action:
    problem: str
    action: str
    why: str
    command: str | None  # the exact next `dlexp ...` command; None when there is no run to build on


def check_error(name: str, value: float) -> None:
    """Raise ValueError when an error rate is not a number in [0, 1]."""
    if not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} error must be a number in [0, 1], got {value!r}")


def diagnose(errors: SplitErrors, *, tolerance: float = DEFAULT_TOLERANCE,
             diverged_at: int | None = None, diverged: bool = False) -> Diagnosis:
    """Measure the four gaps and name the largest one at or above `tolerance` as the verdict.

    A run whose loss became non-finite gets the verdict ``diverged`` whatever its gaps say.

    >>> diagnose(SplitErrors(0.01, 0.015, 0.10, 0.11, 0.11)).verdict
    'variance'
    >>> diagnose(SplitErrors(0.01, 0.011, 0.015, 0.10, 0.10)).verdict
    'data_mismatch'
    >>> diagnose(SplitErrors(0.01, 0.015, 0.02, 0.02, 0.025)).verdict
    'within_tolerance'
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be a non-negative number, got {tolerance!r}")
    values = errors.as_dict()
    gaps = []
    for name, (hi, lo) in GAP_TERMS.items():
        value = values[hi] - values[lo]
        # rounding guards against 0.16 - 0.15 = 0.009999... being called below a 0.01 tolerance
        gaps.append(Gap(name, value, round(value, 12) >= tolerance))
    problems = tuple(g.name for g in sorted((g for g in gaps if g.problem), key=lambda g: -g.value))
    if diverged or diverged_at is not None:
        verdict = "diverged"
    else:
        verdict = problems[0] if problems else "within_tolerance"
    notes = []
    if verdict == "diverged":
        where = f" at step {diverged_at}" if diverged_at is not None else ""
        notes.append(f"Training produced a non-finite loss{where}; the errors below come from the last weights.")
    if errors.train < errors.human:
        notes.append(
            f"Training error ({errors.train:.4g}) is below the human-level error ({errors.human:.4g}): "
            "the human level no longer estimates Bayes error well, so avoidable bias cannot be judged."
        )
    return Diagnosis(errors, tuple(gaps), verdict, problems, tolerance, tuple(notes), diverged_at)


# --------------------------------------------------------------------------------------------------
# Recommendations: computed from the run's own config, each with the exact next command.


def _get(config: Mapping, dotted: str, default=None):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def merge_overrides(base: Sequence[str], new: Sequence[str]) -> list[str]:
    """`base` overrides with those that `new` replaces dropped, then `new`.

    A group override (``model=mlp``) also drops the base overrides inside that group.

    >>> merge_overrides(["model.hidden=[64]", "seed=1"], ["model.hidden=[128]"])
    ['seed=1', 'model.hidden=[128]']
    >>> merge_overrides(["model=logistic", "model.dropout=0.1"], ["model=mlp"])
    ['model=mlp']
    """
    new_keys = {_override_key(o) for o in new}
    kept = [o for o in base
            if _override_key(o) not in new_keys
            and not any(_override_key(o).startswith(k + ".") for k in new_keys)]
    return kept + list(new)


def _fmt_list(values: Sequence) -> str:
    return "[" + ",".join(str(v) for v in values) + "]"


def _fmt_float(x: float) -> str:
    return f"{x:.3g}"


def _command(overrides: Sequence[str], new: Sequence[str], *, multirun: bool = False) -> str:
    args = merge_overrides(overrides, new)
    return " ".join(["dlexp", "train"] + (["-m"] if multirun else []) + [shlex.quote(a) for a in args])


def recommend(diagnosis: Diagnosis, config: Mapping | None = None, *,
              overrides: Sequence[str] = ()) -> tuple[Action, ...]:
    """Concrete next steps for each problem, largest first, computed from the run's resolved config.

    `config` is the run's resolved config as plain mappings (None in what-if mode: the actions then
    carry no command); `overrides` are the ones the run was started with, repeated in each command.
    """
    steps: list[Action] = []
    order = ("diverged",) + diagnosis.problems if diagnosis.verdict == "diverged" else diagnosis.problems
    for problem in order:
        for action, why, new, multirun in _ACTIONS[problem](config or {}):
            command = None if config is None or new is None else _command(overrides, new, multirun=multirun)
            steps.append(Action(problem, action, why, command))
    return tuple(steps)


def _resized(cfg: Mapping, factor: float):
    """(what, overrides) that scale the model's width by `factor`, from its config; None without a width."""
    model = _get(cfg, "model.name", "mlp")

    def scale(v):
        return max(1, int(round(v * factor)))

    if model == "mlp" and _get(cfg, "model.hidden"):
        return "the width of every hidden layer", [f"model.hidden={_fmt_list(scale(h) for h in _get(cfg, 'model.hidden'))}"]
    if model == "cnn" and _get(cfg, "model.channels"):
        return "the channels of every conv block", [f"model.channels={_fmt_list(scale(c) for c in _get(cfg, 'model.channels'))}"]
    if model == "gru" and _get(cfg, "model.hidden_size"):
        return "the recurrent state", [f"model.hidden_size={scale(_get(cfg, 'model.hidden_size'))}"]
    if model == "transformer" and _get(cfg, "model.d_model"):
        heads = _get(cfg, "model.heads", 1) or 1
        d_model = max(heads, scale(_get(cfg, "model.d_model")) // heads * heads)  # a multiple of heads
        return "the model width (d_model and ff)", [f"model.d_model={d_model}",
                                                    f"model.ff={scale(_get(cfg, 'model.ff', 4 * d_model))}"]
    return None


def _deeper(cfg: Mapping):
    """(what, overrides) adding one layer of the model's own kind; None for a linear model."""
    model = _get(cfg, "model.name", "mlp")
    hidden, channels = _get(cfg, "model.hidden"), _get(cfg, "model.channels")
    if model == "mlp" and hidden:
        return "one more hidden layer", [f"model.hidden={_fmt_list(list(hidden) + [hidden[-1]])}"]
    if model == "cnn" and channels:
        return "one more conv block", [f"model.channels={_fmt_list(list(channels) + [2 * channels[-1]])}"]
    if model in ("gru", "transformer") and _get(cfg, "model.layers"):
        return "one more layer", [f"model.layers={_get(cfg, 'model.layers') + 1}"]
    return None


def _max_width(cfg: Mapping) -> int:
    widths = [_get(cfg, "model.hidden"), _get(cfg, "model.channels"), _get(cfg, "model.hidden_size"),
              _get(cfg, "model.d_model")]
    flat = [w for v in widths if v for w in (v if isinstance(v, Sequence) else [v])]
    return max(flat, default=0)


def _bias_actions(cfg: Mapping):
    model = _get(cfg, "model.name")
    epochs = _get(cfg, "trainer.max_epochs")
    dropout = _get(cfg, "model.dropout", 0.0) or 0.0
    wd = _get(cfg, "optimizer.weight_decay", 0.0) or 0.0
    opt = _get(cfg, "optimizer.name")
    lr = _get(cfg, "optimizer.lr")
    bigger = _resized(cfg, 2) if model else None
    if bigger:
        yield (f"Bigger model: double {bigger[0]}",
               "more capacity lowers the training error toward the human level", bigger[1], False)
    elif model == "logistic":
        yield ("Bigger model: a multi-layer perceptron instead of a linear model",
               "a linear model cannot fit a non-linear boundary, whatever the training time",
               ["model=mlp"], False)
    else:
        yield ("Bigger model: more units or layers", "more capacity lowers the training error toward the human level",
               None, False)
    yield ("Train longer", "the training error may still be falling at the last epoch",
           [f"trainer.max_epochs={2 * epochs}"] if epochs else None, False)
    if dropout > 0:
        yield ("Less regularization: lower dropout", "dropout trades training error for variance",
               [f"model.dropout={_fmt_float(dropout / 2)}"], False)
    if wd > 0:
        yield ("Less regularization: no weight decay", "weight decay holds the weights back from fitting",
               ["optimizer.weight_decay=0"], False)
    if opt == "sgd":
        yield ("Better optimizer: Adam", "adaptive steps usually fit faster than plain SGD",
               ["optimizer=adam"], False)
    elif lr:
        lrs = ",".join(_fmt_float(lr * f) for f in (0.3, 1, 3))
        yield ("Tune the learning rate: sweep around the current value",
               "a learning rate off by 3x can leave the training error high", [f"optimizer.lr={lrs}"], True)
    else:
        yield ("Better optimizer or learning rate", "a learning rate off by 3x can leave the training error high",
               None, False)
    deeper = _deeper(cfg) if model else None
    if deeper:
        yield (f"Other architecture: {deeper[0]}", "depth adds capacity where width alone stalls", deeper[1], False)
    if model == "gru":
        yield ("Other architecture: self-attention", "attention links far-apart tokens in one step",
               ["model=transformer"], False)


def _variance_actions(cfg: Mapping):
    n_train = _get(cfg, "data.n_train")
    dropout = _get(cfg, "model.dropout")
    wd = _get(cfg, "optimizer.weight_decay", 0.0) or 0.0
    patience = _get(cfg, "early_stopping.patience", 0) or 0
    why_data = "more examples from the training distribution narrow the train/train-dev gap"
    if _get(cfg, "data.name") in GENERATED_SOURCES and n_train:
        yield ("More training data: double the training set", why_data, [f"data.n_train={2 * n_train}"], False)
    elif not cfg:
        yield ("More training data", why_data, None, False)
    if dropout is not None:
        yield ("Regularization: raise dropout", "dropout keeps the network from memorising the training set",
               [f"model.dropout={_fmt_float(min(0.8, dropout + 0.2))}"], False)
    yield ("Regularization: weight decay", "smaller weights generalise better from the same data",
           [f"optimizer.weight_decay={_fmt_float(wd * 10 if wd > 0 else 1e-4)}"], False)
    if patience <= 0:
        yield ("Early stopping on the dev error", "stops before the model starts fitting noise",
               ["early_stopping.patience=3"], False)
    smaller = _resized(cfg, 0.5)
    if smaller and _max_width(cfg) > 8:
        yield ("Smaller model (last resort)", "less capacity to memorise, at the risk of more bias",
               smaller[1], False)


def _mismatch_actions(cfg: Mapping):
    frac = _get(cfg, "data.target_fraction")
    what = "Make training data like dev/test: move target-distribution examples into training"
    why = "the model has seen too little of the distribution it is judged on"
    # only where dev/test differ from training can they be mixed in: synthetic with a shift, tables with
    # their own dev file or query
    if _get(cfg, "data.name") in ("table", "sql"):
        separate = bool(_get(cfg, "data.dev_path") or _get(cfg, "data.dev_query"))
    else:
        separate = bool(_get(cfg, "data.shift", 1))
    if frac is not None and separate and frac < 0.9:
        yield (what, why, [f"data.target_fraction={_fmt_float(min(0.9, max(0.2, 2 * frac)))}"], False)
    elif frac is None:
        yield (what + ", or synthesise/augment such examples", why, None, False)
    yield ("Error analysis: compare dev mistakes with train-dev mistakes",
           "find which inputs the shift hurts before collecting or synthesising data", None, False)


def _dev_overfit_actions(cfg: Mapping):
    n_dev = _get(cfg, "data.n_dev")
    yield ("Bigger dev set", "a small dev set overfits to the choices tuned on it",
           [f"data.n_dev={2 * n_dev}"] if n_dev else None, False)
    seed = _get(cfg, "seed", 0) or 0
    yield ("Stop tuning on dev: re-run with a fresh seed before changing anything",
           "if the test gap moves with the seed, the dev result was luck", [f"seed={seed + 1}"], False)


def _diverged_actions(cfg: Mapping):
    lr = _get(cfg, "optimizer.lr")
    clip = _get(cfg, "optimizer.grad_clip")
    yield ("Lower the learning rate tenfold", "a step too large sends the loss to infinity",
           [f"optimizer.lr={_fmt_float(lr / 10)}"] if lr else None, False)
    if not clip:
        yield ("Clip gradients", "caps the size of a single step", ["optimizer.grad_clip=1.0"], False)


_ACTIONS = {
    "avoidable_bias": _bias_actions,
    "variance": _variance_actions,
    "data_mismatch": _mismatch_actions,
    "dev_overfitting": _dev_overfit_actions,
    "diverged": _diverged_actions,
}


# --------------------------------------------------------------------------------------------------
# The JSON document: one shape for `dlexp diagnose --json`, `diagnosis.json` and the MLflow names.


def _clean(x: float) -> float:
    """0.0578 rather than 0.057800000000000004: the difference of two rates, rounded to 12 decimals."""
    return round(x, 12) if math.isfinite(x) else x


@dataclass(frozen=True)
class Report:
    """A diagnosis with everything needed to print or log it."""

    diagnosis: Diagnosis
    actions: tuple[Action, ...]
    run_id: str | None = None
    sizes: Mapping[str, int] = field(default_factory=dict)
    task: str = "classification"
    metric: str = "error_rate"  # error_rate, or for regression rmse | mae in the target's unit
    checks: tuple[str, ...] = ()  # findings about the data: leakage, classes absent from training, tiny splits

    def document(self) -> dict:
        d = self.diagnosis
        return {
            "run_id": self.run_id,
            "task": self.task,
            "metric": self.metric,
            "errors": {k: _clean(v) for k, v in d.errors.as_dict().items()},
            "sizes": {s: self.sizes.get(s) for s in SPLITS},
            "gaps": {g.name: _clean(g.value) for g in d.gaps},
            "tolerance": d.tolerance,
            "verdict": d.verdict,
            "problems": list(d.problems),
            "notes": list(d.notes),
            "checks": list(self.checks),
            "diverged_at": d.diverged_at,
            "actions": [{"problem": a.problem, "action": a.action, "why": a.why, "command": a.command}
                        for a in self.actions],
        }

    def metrics(self) -> dict[str, float]:
        """The MLflow metric names: error/<split>, gap/<name>."""
        out = {f"error/{k}": _clean(v) for k, v in self.diagnosis.errors.as_dict().items()}
        out.update({f"gap/{g.name}": _clean(g.value) for g in self.diagnosis.gaps})
        return out

    def tags(self) -> dict[str, str]:
        tags = {"dlexp.verdict": self.diagnosis.verdict, "dlexp.problems": ",".join(self.diagnosis.problems),
                "dlexp.task": self.task, "dlexp.metric": self.metric}
        if self.checks:
            tags["dlexp.checks"] = " | ".join(self.checks)[:5000]
        return tags
