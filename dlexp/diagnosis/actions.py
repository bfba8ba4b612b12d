"""The next steps: for each problem, concrete actions computed from the run's own config, each with the
exact `dlexp train` command to run.

What a step changes in the model comes from the model's knobs (`model.knobs` in its config: its width, depth
and dropout keys), the same for the built-in families and the user's own `_target_` models; a model without
knobs still gets the model-independent steps (train longer, learning rate, weight decay, more data, early
stopping)."""

from __future__ import annotations

import functools
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from dlexp.diagnosis.splits import GENERATED_SOURCES
from dlexp.diagnosis.verdict import Diagnosis


@dataclass(frozen=True)
class Action:
    problem: str
    action: str
    why: str
    command: str | None  # the exact next `dlexp ...` command; None when there is no run to build on


# the heads of actions that name a family, not the step: their label is what follows the colon
FAMILIES = ("Regularization", "Less regularization", "Other architecture")


def label(action: str) -> str:
    """A few words naming an action, for run names (`mlp · synthetic · bigger model`) and `dlexp runs`.

    >>> label("Bigger model: double the width of every hidden layer"), label("Regularization: raise dropout")
    ('bigger model', 'raise dropout')
    >>> label("Smaller model (last resort)"), label("Measure more: about 314 more dev examples (300 -> 614)")
    ('smaller model', 'measure more')
    """
    head, _, tail = action.partition(":")
    text = tail if head.strip() in FAMILIES and tail.strip() else head
    text = text.split("(")[0].strip().rstrip(".")
    return (text[:1].lower() + text[1:]) if text[1:2].islower() or len(text) < 2 else text


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
    if multirun:  # a sweep runs one job per value; a seed group (seeds=N) does not combine with it
        args = [a for a in args if not a.startswith("seeds=")]
    return " ".join(["dlexp", "train"] + (["-m"] if multirun else []) + [shlex.quote(a) for a in args])


def recommend(diagnosis: Diagnosis, config: Mapping | None = None, *,
              overrides: Sequence[str] = (), pretrained: Sequence[Mapping] = (),
              train_size: int | None = None) -> tuple[Action, ...]:
    """Concrete next steps for each problem, largest first, computed from the run's resolved config.

    `config` is the run's resolved config as plain mappings (None in what-if mode: the actions then
    carry no command); `overrides` are the ones the run was started with, repeated in each command.
    `pretrained`: finished runs this one could start from (run_id, data, task, path), found in the store by
    the caller; `train_size`: the training examples, so that a small training set is told to start from one.
    """
    steps: list[Action] = []
    order = ("diverged",) + diagnosis.problems if diagnosis.verdict == "diverged" else diagnosis.problems
    if diagnosis.verdict == "inconclusive" and diagnosis.resolve:
        action, why, new = _measure_more(diagnosis, config or {})
        command = None if config is None or new is None else _command(overrides, new)
        steps.append(Action("inconclusive", action, why, command))
    # below the human level, the training set's label noise is being memorised: regularize harder
    memorised = diagnosis.human_known and diagnosis.errors.train < diagnosis.errors.human
    for problem in order:
        for action, why, command in _transfer_actions(problem, config or {}, overrides, pretrained, train_size):
            steps.append(Action(problem, action, why, command if config is not None else None))
        own = {"memorised": memorised} if problem in ("variance", "variance_or_mismatch") else {}
        for action, why, new, multirun in _ACTIONS[problem](config or {}, **own):
            command = None if config is None or new is None else _command(overrides, new, multirun=multirun)
            steps.append(Action(problem, action, why, command))
    return tuple(steps)


SIZE_KEYS = {"train": "data.n_train", "train_dev": "data.n_train_dev", "dev": "data.n_dev", "test": "data.n_test"}


def _measure_more(diagnosis: Diagnosis, cfg: Mapping):
    """The first action of an inconclusive verdict: the examples that would settle the largest gap."""
    r = diagnosis.resolve
    lo, hi = r["interval"] if r["interval"] else (r["value"], r["value"])
    why = (f"{r['gap']} is {r['value']:.2%} but its 95% interval [{lo:.2%}, {hi:.2%}] does not clear the "
           f"tolerance {diagnosis.tolerance:.2%}")
    if not r["more"]:
        return (f"Measure more before acting on {r['gap']}: {r['reason']}", why, None)
    sizes = r["sizes"]
    what = " and ".join(f"{m:,} more {s} examples ({sizes[s]:,} -> {sizes[s] + m:,})" for s, m in r["more"].items())
    why += "; with that many a gap of this size would clear it"
    new = []
    for split, more in r["more"].items():
        current = _get(cfg, SIZE_KEYS[split])
        if current and _get(cfg, "data.name") in GENERATED_SOURCES:
            # sizes may be pooled over seeds: scale the config's own value by the same factor
            new.append(f"{SIZE_KEYS[split]}={math.ceil(current * (sizes[split] + more) / sizes[split])}")
    return (f"Measure more: about {what} would settle {r['gap']}", why,
            new if len(new) == len(r["more"]) else None)


def _knobs(cfg: Mapping) -> Mapping:
    """The model's knobs (`model.knobs` in its config): which of its own keys are width, depth and dropout.

    A config logged before the families declared their knobs gets its built-in family's from its YAML.
    """
    knobs = _get(cfg, "model.knobs")
    if knobs is None and isinstance(_get(cfg, "model.name"), str) and _get(cfg, "model._target_") is None:
        return family_knobs(_get(cfg, "model.name"))
    return knobs or {}


@functools.cache
def family_knobs(name: str) -> Mapping:
    """The knobs a built-in model family's YAML (configs/model/NAME.yaml) declares; {} for no such family.

    >>> family_knobs("mlp")["width"], family_knobs("nonesuch")
    (['hidden'], {})
    """
    import yaml

    path = resources.files("dlexp.configs") / "model" / f"{name}.yaml"
    if not name.isidentifier() or not path.is_file():
        return {}
    return (yaml.safe_load(path.read_text()) or {}).get("knobs") or {}


def _knob(cfg: Mapping, role: str):
    """(`model.KEY`, its value) for a depth or dropout knob; (None, None) when the model names none."""
    key = _knobs(cfg).get(role)
    return (f"model.{key}", _get(cfg, f"model.{key}")) if key else (None, None)


def _optimizer(cfg: Mapping, role: str):
    """(key, value) of the learning rate or weight decay: dlexp's `optimizer.*`, or the model's own key that
    its knobs name (`lr: optimizer.lr` for a LightningModule with its own optimizer); (None, None) for a model
    that brings its own optimizer (`own_optimizer`) and names no such key."""
    knobs = _knobs(cfg)
    if knobs.get(role):
        return f"model.{knobs[role]}", _get(cfg, f"model.{knobs[role]}")
    if knobs.get("own_optimizer"):
        return None, None
    return f"optimizer.{role}", _get(cfg, f"optimizer.{role}")


def _widths(cfg: Mapping) -> list[tuple[str, object]]:
    """(key, value) of each width knob that has a value (a number or a non-empty list of numbers)."""
    keys = _knobs(cfg).get("width") or []
    return [(k, _get(cfg, f"model.{k}")) for k in keys if _get(cfg, f"model.{k}")]


def scaled_widths(cfg: Mapping, factor: float) -> list[tuple[str, object]]:
    """Each width knob as (`model.KEY`, its value scaled by `factor`: a number, or a list of numbers), from the
    run's config; [] for a model that names no width. Used by next steps and `dlexp curve --axis model`.

    >>> scaled_widths({"model": {"hidden": [64, 32], "knobs": {"width": ["hidden"]}}}, 2)
    [('model.hidden', [128, 64])]
    """
    knobs = _knobs(cfg)

    def scale(v):
        return max(1, int(round(v * factor)))

    out = []
    for key, value in _widths(cfg):
        if isinstance(value, Sequence) and not isinstance(value, str):
            out.append((f"model.{key}", [scale(v) for v in value]))
            continue
        scaled, base = scale(value), (knobs.get("multiple_of") or {}).get(key)
        step = _get(cfg, f"model.{base}", 1) if base else 1
        if step and step > 1:  # d_model stays a multiple of the attention heads
            scaled = max(step, scaled // step * step)
        out.append((f"model.{key}", scaled))
    return out


def width_overrides(widths: Sequence[tuple[str, object]]) -> list[str]:
    """`scaled_widths` as overrides: `model.hidden=[128,64]`."""
    return [f"{k}={_fmt_list(v) if isinstance(v, list) else v}" for k, v in widths]


def _resized(cfg: Mapping, factor: float):
    """(what, overrides) that scale the model's width knobs by `factor`; None without any."""
    widths = scaled_widths(cfg, factor)
    if not widths:
        return None
    what = _knobs(cfg).get("width_words") or " and ".join(k for k, _ in widths)
    return what, width_overrides(widths)


def deeper(cfg: Mapping):
    """(what, overrides) adding one layer: the depth knob plus one, or one more entry in its list; None for a
    model without a depth knob. Used by next steps and the recipe's bold variance step.

    >>> deeper({"model": {"hidden": [128, 128], "knobs": {"depth": "hidden"}}})[1]
    ['model.hidden=[128,128,128]']
    """
    key, value = _knob(cfg, "depth")
    if key is None or value is None or (isinstance(value, Sequence) and not value) or isinstance(value, str):
        return None
    what = _knobs(cfg).get("depth_words") or f"one more layer ({key})"
    if isinstance(value, Sequence):
        growth = _knobs(cfg).get("depth_growth") or 1
        return what, [f"{key}={_fmt_list(list(value) + [value[-1] * growth])}"]
    return what, [f"{key}={value + 1}"]


def _max_width(cfg: Mapping) -> int:
    flat = [w for _, v in _widths(cfg) for w in (v if isinstance(v, Sequence) else [v])]
    return max(flat, default=0)


def _bias_actions(cfg: Mapping):
    knobs = _knobs(cfg)
    epochs = _get(cfg, "trainer.max_epochs")
    dropout_key, dropout = _knob(cfg, "dropout")
    wd_key, wd = _optimizer(cfg, "weight_decay")
    lr_key, lr = _optimizer(cfg, "lr")
    opt = _get(cfg, "optimizer.name") if lr_key == "optimizer.lr" else None
    bigger, instead = _resized(cfg, 2), knobs.get("instead")
    why_bigger = "more capacity lowers the training error toward the human level"
    if bigger:
        yield (f"Bigger model: double {bigger[0]}", why_bigger, bigger[1], False)
    elif instead:
        yield (f"Bigger model: {knobs.get('instead_words') or f'model={instead}'}", knobs.get("instead_why") or why_bigger,
               [f"model={instead}"], False)
    else:
        yield ("Bigger model: more units or layers", why_bigger, None, False)
    yield ("Train longer", "the training error may still be falling at the last epoch",
           [f"trainer.max_epochs={2 * epochs}"] if epochs else None, False)
    if dropout_key and (dropout or 0) > 0:
        yield ("Less regularization: lower dropout", "dropout trades training error for variance",
               [f"{dropout_key}={_fmt_float(dropout / 2)}"], False)
    if wd_key and (wd or 0) > 0:
        yield ("Less regularization: no weight decay", "weight decay holds the weights back from fitting",
               [f"{wd_key}=0"], False)
    if opt == "sgd":
        yield ("Better optimizer: Adam", "adaptive steps usually fit faster than plain SGD",
               ["optimizer=adam"], False)
    elif lr:
        lrs = ",".join(_fmt_float(lr * f) for f in (0.3, 1, 3))
        yield ("Tune the learning rate: sweep around the current value",
               "a learning rate off by 3x can leave the training error high", [f"{lr_key}={lrs}"], True)
    else:
        yield ("Better optimizer or learning rate", "a learning rate off by 3x can leave the training error high",
               None, False)
    more = deeper(cfg)
    if more:
        yield (f"Other architecture: {more[0]}", "depth adds capacity where width alone stalls", more[1], False)
    if bigger and instead:
        yield (f"Other architecture: {knobs.get('instead_words') or f'model={instead}'}",
               knobs.get("instead_why") or "another family may fit what this one cannot", [f"model={instead}"], False)


# weight decay from none: a light L2 penalty, or a strong one for a model that memorises its training labels
WEIGHT_DECAY = (1e-3, 1e-2)


def _variance_actions(cfg: Mapping, memorised: bool = False):
    """Variance's steps. `memorised`: the training error is below the human level, the model fits the noise of
    its training labels: weight decay starts strong (1e-2 rather than 1e-3; Adam's coupled L2 penalty)."""
    n_train = _get(cfg, "data.n_train")
    dropout_key, dropout = _knob(cfg, "dropout")
    wd_key, wd = _optimizer(cfg, "weight_decay")
    wd = wd or 0.0
    patience = _get(cfg, "early_stopping.patience", 0) or 0
    why_data = "more examples from the training distribution narrow the train/train-dev gap"
    if _get(cfg, "data.name") == "images" and not _get(cfg, "data.augment"):
        yield ("Data augmentation: random crops, flips and small rotations of the training images",
               "each epoch shows new variants of the same images, which the network cannot memorise",
               ["data.augment=true"], False)
    if _get(cfg, "data.name") in GENERATED_SOURCES and n_train:
        yield ("More training data: double the training set", why_data, [f"data.n_train={2 * n_train}"], False)
    elif not cfg:
        yield ("More training data", why_data, None, False)
    if dropout_key and dropout is not None:
        yield ("Regularization: raise dropout", "dropout keeps the network from memorising the training set",
               [f"{dropout_key}={_fmt_float(min(0.8, dropout + 0.2))}"], False)
    if wd_key:
        yield ("Regularization: weight decay", "smaller weights generalise better from the same data",
               [f"{wd_key}={_fmt_float(wd * 10 if wd > 0 else WEIGHT_DECAY[memorised])}"], False)
    if patience <= 0:
        yield ("Early stopping on the dev error", "stops before the model starts fitting noise",
               ["early_stopping.patience=3"], False)
    smaller = _resized(cfg, 0.5)
    if smaller and _max_width(cfg) > 8:
        yield ("Smaller model (last resort)", "less capacity to memorise, at the risk of more bias",
               smaller[1], False)


SMALL_TRAIN = 10_000  # below this many training examples, starting from a pretrained run is proposed for variance
_PRETRAIN_KEEP = ("model", "optimizer", "trainer", "seed", "tracking", "--config-dir")


def _pretrain_command(overrides: Sequence[str], cfg: Mapping, path: str) -> str:
    """`dlexp train` of a language model on the unlabelled file, with this run's model and training options."""
    kept = [o for o in overrides if _override_key(o).split(".")[0] in _PRETRAIN_KEEP
            and not _override_key(o).startswith(("model.init_from", "model.freeze"))]
    new = ["data=text", "data.task=lm", f"data.path={path}"]
    if _get(cfg, "data.text_column", "text") != "text":
        new.append(f"data.text_column={_get(cfg, 'data.text_column')}")
    return _command(kept, new)


def _transfer_actions(problem: str, cfg: Mapping, overrides: Sequence[str], pretrained: Sequence[Mapping],
                      train_size: int | None):
    """(action, why, command): start from a pretrained run, for variance on a small training set and for
    data mismatch, when the store holds a compatible run or the config names an unlabelled set."""
    if problem not in ("variance", "data_mismatch"):
        return
    if problem == "variance" and train_size is not None and train_size >= SMALL_TRAIN:
        return
    why = ("weights learned from a larger set bring what the small training set cannot teach"
           if problem == "variance" else
           "weights learned from a larger set, closer to what dev/test hold, need less of the training distribution")
    started = _get(cfg, "model.init_from")
    if started:
        if problem == "variance" and str(_get(cfg, "model.freeze", "none")) != "body":
            yield ("Freeze the pretrained body: train only the head",
                   "fewer trained weights cannot memorise the small training set", _command(overrides, ["model.freeze=body"]))
        return
    runs = [r for r in pretrained if r.get("run_id")]
    if runs:
        r = runs[0]
        kind = "language model" if r.get("task") == "lm" else "model"
        yield (f"Start from a pretrained run: the {kind} {r['run_id']} trained on {r.get('path') or r.get('data')}",
               why, _command(overrides, [f"model.init_from={r['run_id']}"]))
        return
    unlabelled = _get(cfg, "data.unlabelled_path")
    if unlabelled and _get(cfg, "data.name") == "text":
        yield (f"Start from a pretrained run: pre-train on {unlabelled} (next-token prediction), then train this "
               "again with model.init_from=<that run's id>",
               why + "; unlabelled text is plenty where labels are scarce", _pretrain_command(overrides, cfg, unlabelled))


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
    synth = _get(cfg, "data.synthesize")
    if frac is not None and separate and frac < 0.9:
        yield (what, why, [f"data.target_fraction={_fmt_float(min(0.9, max(0.2, 2 * frac)))}"], False)
    elif synth is not None and _get(cfg, "data.dev_path"):
        if synth < 1:
            yield ("Synthesise training data like dev/test: copies of training images given the dev images' blur, "
                   "grain and tone", "the model has seen too little of the conditions it is judged under; focus, "
                   "grain and tone do not change what an image shows, so the copies keep their labels",
                   [f"data.synthesize={_fmt_float(min(1.0, synth + 0.5))}"], False)
    elif frac is None:
        yield (what + ", or synthesise/augment such examples", why, None, False)
    weight = _get(cfg, "data.reweight")
    if weight is not None and separate and weight < 1:
        yield ("Reweight training examples by how much they look like dev/test",
               "a classifier that tells training inputs from dev inputs finds the training examples most like "
               "where the model serves; drawing them more often trains on a distribution nearer dev's",
               [f"data.reweight={_fmt_float(min(1.0, weight + 0.5))}"], False)
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
    lr_key, lr = _optimizer(cfg, "lr")
    clip = _get(cfg, "optimizer.grad_clip")
    yield ("Lower the learning rate tenfold", "a step too large sends the loss to infinity",
           [f"{lr_key}={_fmt_float(lr / 10)}"] if lr_key and lr else None, False)
    if not clip and not _knobs(cfg).get("own_optimizer"):
        yield ("Clip gradients", "caps the size of a single step", ["optimizer.grad_clip=1.0"], False)


def _joint_actions(cfg: Mapping, memorised: bool = False):
    """No train-dev error: tell variance from mismatch first, then what helps with either."""
    yield ("Measure a train-dev split: hold out part of the training data and measure its error",
           "without it the train-to-dev gap cannot be split into variance and data mismatch", None, False)
    yield from _variance_actions(cfg, memorised)
    yield from _mismatch_actions(cfg)


_ACTIONS = {
    "avoidable_bias": _bias_actions,
    "variance": _variance_actions,
    "variance_or_mismatch": _joint_actions,
    "data_mismatch": _mismatch_actions,
    "dev_overfitting": _dev_overfit_actions,
    "diverged": _diverged_actions,
}
