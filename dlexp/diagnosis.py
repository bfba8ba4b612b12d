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
VERDICTS = GAPS + ("within_tolerance", "inconclusive", "diverged")

# gap name -> (the larger error, the smaller error): gap = errors[a] - errors[b]
GAP_TERMS = {
    "avoidable_bias": ("train", "human"),
    "variance": ("train_dev", "train"),
    "data_mismatch": ("dev", "train_dev"),
    "dev_overfitting": ("test", "dev"),
}

DEFAULT_TOLERANCE = 0.01
Z95 = 1.959963984540054  # two-sided 95%: NormalDist().inv_cdf(0.975)
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
    problem: bool  # the interval's lower end reaches the tolerance (the estimate, when there is no interval)
    interval: tuple[float, float] | None = None  # 95%; None when the split sizes are unknown


@dataclass(frozen=True)
class Diagnosis:
    errors: SplitErrors
    gaps: tuple[Gap, ...]
    verdict: str
    problems: tuple[str, ...]  # gap names at or above tolerance, largest first
    tolerance: float
    notes: tuple[str, ...] = ()
    diverged_at: int | None = None  # global step where the loss became non-finite
    # 95% intervals: "human" (the baseline's range), the four splits and the four gaps; None where unknown
    intervals: Mapping[str, tuple[float, float] | None] = field(default_factory=dict)
    # when the verdict is `inconclusive`: the gap, the split to enlarge, and how many more examples it needs
    resolve: Mapping | None = None

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


# --------------------------------------------------------------------------------------------------
# Intervals: closed-form, so stdlib math suffices. Wilson's score interval for an error rate measured on
# n examples; for a gap (the difference of two independent estimates) Newcombe's hybrid score method,
# which is MOVER ("method of variance estimates recovery") applied to two Wilson intervals. MOVER also
# takes any other pair of intervals (a bootstrap's for regression, seed-widened ones), so gaps stay
# consistent with whatever produced the error intervals.

# two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (beyond that: the normal's)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (Z95 from 31 on)."""
    return _T975[df - 1] if 1 <= df <= len(_T975) else Z95


def wilson(p: float, n: int | None, *, z: float = Z95) -> tuple[float, float] | None:
    """Wilson's score interval for a proportion `p` observed on `n` examples; None when n is unknown.

    >>> [round(x, 4) for x in wilson(0.1, 200)]
    [0.0657, 0.1494]
    >>> wilson(0.0, 100)[0]
    0.0
    """
    if not n:
        return None
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(max(0.0, p * (1 - p) / n + z2 / (4 * n * n)))
    lo = 0.0 if p <= 0 else max(0.0, centre - half)
    hi = 1.0 if p >= 1 else min(1.0, centre + half)
    return lo, hi


def mover(a: float, ci_a: tuple[float, float], b: float, ci_b: tuple[float, float]) -> tuple[float, float]:
    """Interval for a - b from intervals for two independent estimates a and b (Newcombe/Zou-Donner MOVER).

    >>> [round(x, 4) for x in mover(0.12, wilson(0.12, 500), 0.10, wilson(0.10, 500))]
    [-0.019, 0.0591]
    """
    d = a - b
    lo = d - math.sqrt((a - ci_a[0]) ** 2 + (ci_b[1] - b) ** 2)
    hi = d + math.sqrt((ci_a[1] - a) ** 2 + (b - ci_b[0]) ** 2)
    return lo, hi


def newcombe(p1: float, n1: int | None, p2: float, n2: int | None) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval for p1 - p2, two independent proportions on n1 and n2 examples."""
    c1, c2 = wilson(p1, n1), wilson(p2, n2)
    if c1 is None or c2 is None:
        return None
    return mover(p1, c1, p2, c2)


def _widen(estimate: float, ci: tuple[float, float], half: float) -> tuple[float, float]:
    """Add a symmetric half-width `half` (the seed-to-seed term) to both sides of `ci`, in quadrature."""
    lo = estimate - math.sqrt((estimate - ci[0]) ** 2 + half ** 2)
    hi = estimate + math.sqrt((ci[1] - estimate) ** 2 + half ** 2)
    return max(0.0, lo), min(1.0, hi)


def intervals(errors: SplitErrors, sizes: Mapping[str, int | None] | None = None, *,
              human_range: Sequence[float] | None = None, spread: Mapping[str, float] | None = None,
              n_seeds: int = 1, given: Mapping[str, Sequence[float] | None] | None = None,
              ) -> dict[str, tuple[float, float] | None]:
    """95% intervals for the human level, the four split errors and the four gaps.

    - a split error: Wilson's interval on the split's size (None when the size is unknown), or the one
      in `given` (a bootstrap's, for regression);
    - pooled seeds: `errors` are the means over `n_seeds` runs, `sizes` the pooled sizes, `spread` the
      seed-to-seed standard deviation of each error; the part of its variance that sampling alone does not
      explain enters as t(n_seeds - 1) * sd_excess / sqrt(n_seeds), added in quadrature;
    - human: `human_range` (several annotators) or the point itself; it widens avoidable_bias;
    - a gap: MOVER on its two terms' intervals (Newcombe's hybrid score method for two Wilson intervals),
      or the one in `given` (a bootstrap of the difference, for regression).

    >>> iv = intervals(SplitErrors(0.01, 0.08, 0.09, 0.10, 0.11), {"train": 8000, "train_dev": 2000,
    ...                "dev": 2000, "test": 2000})
    >>> [round(x, 4) for x in iv["data_mismatch"]]
    [-0.0082, 0.0282]
    """
    sizes, spread, given = sizes or {}, spread or {}, given or {}
    values = errors.as_dict()
    out: dict[str, tuple[float, float] | None] = {}
    h = values["human"]
    out["human"] = (float(min(human_range)), float(max(human_range))) if human_range else (h, h)
    for split in SPLITS:
        p = values[split]
        ci = tuple(given[split]) if given.get(split) is not None else wilson(p, sizes.get(split))
        if ci is not None and n_seeds > 1 and spread.get(split):
            # the seed-to-seed variance beyond what sampling alone gives each run (which Wilson's interval on
            # the pooled examples already holds): t with n_seeds - 1 degrees of freedom on its mean
            per_run = sizes.get(split) / n_seeds if sizes.get(split) else None
            sampling = p * (1 - p) / per_run if per_run and given.get(split) is None else 0.0
            excess = math.sqrt(max(0.0, spread[split] ** 2 - sampling))
            ci = _widen(p, ci, t975(n_seeds - 1) * excess / math.sqrt(n_seeds))
        out[split] = ci
    for name, (a, b) in GAP_TERMS.items():
        ci_a, ci_b = out[a], out[b]
        if given.get(name) is not None and not (n_seeds > 1 and spread):  # a bootstrap's own gap interval
            out[name] = tuple(given[name])
        else:
            out[name] = None if ci_a is None or ci_b is None else mover(values[a], ci_a, values[b], ci_b)
    return out


def diagnose(errors: SplitErrors, *, tolerance: float = DEFAULT_TOLERANCE,
             diverged_at: int | None = None, diverged: bool = False,
             sizes: Mapping[str, int | None] | None = None, human_range: Sequence[float] | None = None,
             spread: Mapping[str, float] | None = None, n_seeds: int = 1,
             given_intervals: Mapping[str, Sequence[float] | None] | None = None) -> Diagnosis:
    """Measure the four gaps with their 95% intervals and name the largest confirmed problem as the verdict.

    A gap is a problem when its interval's lower end reaches `tolerance`. Without split sizes there is no
    interval, and the estimate itself is held against the tolerance. When the largest gap's estimate
    reaches the tolerance but its interval does not clear it, the verdict is ``inconclusive`` and
    `Diagnosis.resolve` says how many more examples of which split would settle a gap of that size.
    A run whose loss became non-finite gets the verdict ``diverged`` whatever its gaps say.

    >>> diagnose(SplitErrors(0.01, 0.015, 0.10, 0.11, 0.11)).verdict
    'variance'
    >>> diagnose(SplitErrors(0.01, 0.011, 0.015, 0.10, 0.10)).verdict
    'data_mismatch'
    >>> diagnose(SplitErrors(0.01, 0.015, 0.02, 0.02, 0.025)).verdict
    'within_tolerance'
    >>> small = {"train": 800, "train_dev": 200, "dev": 200, "test": 200}
    >>> d = diagnose(SplitErrors(0.01, 0.015, 0.02, 0.05, 0.05), sizes=small)
    >>> d.verdict, sorted(d.resolve["more"])
    ('inconclusive', ['dev', 'train_dev'])
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be a non-negative number, got {tolerance!r}")
    values = errors.as_dict()
    iv = intervals(errors, sizes, human_range=human_range, spread=spread, n_seeds=n_seeds,
                   given=given_intervals)
    gaps = []
    for name, (hi, lo) in GAP_TERMS.items():
        value = values[hi] - values[lo]
        ci = iv[name]
        # rounding guards against 0.16 - 0.15 = 0.009999... being called below a 0.01 tolerance
        problem = round(value if ci is None else ci[0], 12) >= tolerance
        gaps.append(Gap(name, value, problem, ci))
    problems = tuple(g.name for g in sorted((g for g in gaps if g.problem), key=lambda g: -g.value))
    largest = max(gaps, key=lambda g: g.value)
    uncertain = [g for g in gaps if round(g.value, 12) >= tolerance and not g.problem]
    resolve = None
    if diverged or diverged_at is not None:
        verdict = "diverged"
    elif round(largest.value, 12) >= tolerance and not largest.problem:
        verdict = "inconclusive"
        resolve = _resolve(largest, errors, sizes or {}, tolerance, human_range=human_range, spread=spread,
                           n_seeds=n_seeds, given=given_intervals)
    else:
        verdict = problems[0] if problems else "within_tolerance"
    notes = []
    if verdict == "diverged":
        where = f" at step {diverged_at}" if diverged_at is not None else ""
        notes.append(f"Training produced a non-finite loss{where}; the errors below come from the last weights.")
    for g in uncertain:
        notes.append(f"{g.name} ({g.value:.4g}) reaches the tolerance, but its 95% interval "
                     f"[{g.interval[0]:.4g}, {g.interval[1]:.4g}] does not clear it: not a confirmed problem.")
    if errors.train < errors.human:
        notes.append(
            f"Training error ({errors.train:.4g}) is below the human-level error ({errors.human:.4g}): "
            "the human level no longer estimates Bayes error well, so avoidable bias cannot be judged."
        )
    if n_seeds > 1:
        notes.append(f"Pooled over {n_seeds} seeds: errors are the means, and the intervals include the "
                     "seed-to-seed spread.")
    return Diagnosis(errors, tuple(gaps), verdict, problems, tolerance, tuple(notes), diverged_at, iv, resolve)


def _resolve(gap: Gap, errors: SplitErrors, sizes: Mapping[str, int | None], tolerance: float, *,
             human_range=None, spread=None, n_seeds: int = 1, given=None) -> dict:
    """How many more examples would make an interval around a gap of this size clear `tolerance`.

    First the smaller of the gap's two splits alone (train for avoidable_bias; ties: the gap's larger term);
    when that cannot do it, both splits grown by the same factor. `more` maps split -> extra examples; it is
    empty when neither works (a human-level range or the seed spread too wide), and `reason` says why.
    """
    a, b = GAP_TERMS[gap.name]
    candidates = [s for s in (a, b) if s in SPLITS and sizes.get(s)]
    out = {"gap": gap.name, "value": gap.value, "interval": list(gap.interval) if gap.interval else None,
           "more": {}, "sizes": {s: int(sizes[s]) for s in candidates}, "reason": None}
    if not candidates or given:
        out["reason"] = "the split sizes are unknown" if not candidates else "the intervals were given"
        return out

    def lower(new_sizes: Mapping[str, int]) -> float:
        iv = intervals(errors, dict(sizes, **new_sizes), human_range=human_range, spread=spread,
                       n_seeds=n_seeds)
        return round(iv[gap.name][0], 12)

    def smallest(grow) -> int | None:
        """The smallest k in [1, 1e9] with lower(grow(k)) >= tolerance (lower rises with k), else None."""
        lo_k, hi_k = 0, 10 ** 9
        if lower(grow(hi_k)) < tolerance:
            return None
        while hi_k - lo_k > 1:
            mid = (lo_k + hi_k) // 2
            lo_k, hi_k = (lo_k, mid) if lower(grow(mid)) >= tolerance else (mid, hi_k)
        return hi_k

    first = min(candidates, key=lambda s: sizes[s])
    n = int(sizes[first])
    extra = smallest(lambda k: {first: n + k})
    if extra is not None:
        out["more"] = {first: extra}
        return out
    if len(candidates) == 2:  # both, by the same factor (in thousandths of the current sizes)
        k = smallest(lambda k: {s: int(sizes[s] * (1 + k / 1000)) for s in candidates})
        if k is not None:
            out["more"] = {s: int(sizes[s] * (1 + k / 1000)) - int(sizes[s]) for s in candidates}
            return out
    if round(gap.value, 12) <= tolerance:
        out["reason"] = "the gap sits at the tolerance: more data only pins it there"
    elif gap.name == "avoidable_bias" and human_range:
        out["reason"] = "the human-level range is too wide: narrow baseline.human_error"
    elif n_seeds > 1 and spread:
        out["reason"] = "the seed-to-seed spread dominates: train more seeds"
    else:
        out["reason"] = "more examples alone cannot narrow the interval enough"
    return out


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
              overrides: Sequence[str] = ()) -> tuple[Action, ...]:
    """Concrete next steps for each problem, largest first, computed from the run's resolved config.

    `config` is the run's resolved config as plain mappings (None in what-if mode: the actions then
    carry no command); `overrides` are the ones the run was started with, repeated in each command.
    """
    steps: list[Action] = []
    order = ("diverged",) + diagnosis.problems if diagnosis.verdict == "diverged" else diagnosis.problems
    if diagnosis.verdict == "inconclusive" and diagnosis.resolve:
        action, why, new = _measure_more(diagnosis, config or {})
        command = None if config is None or new is None else _command(overrides, new)
        steps.append(Action("inconclusive", action, why, command))
    for problem in order:
        for action, why, new, multirun in _ACTIONS[problem](config or {}):
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
    seeds: Mapping | None = None  # pooled seed group: {"seeds": [...], "runs": [...], "spread": {...}}
    analysis: Mapping | None = None  # error analysis (classification): per-class errors, rising classes, ...
    curve: Mapping | None = None  # learning curve (a curve's parent run): points, fit, the answer

    def document(self) -> dict:
        d = self.diagnosis
        return {
            "run_id": self.run_id,
            "task": self.task,
            "metric": self.metric,
            "errors": {k: _clean(v) for k, v in d.errors.as_dict().items()},
            "sizes": {s: self.sizes.get(s) for s in SPLITS},
            "gaps": {g.name: _clean(g.value) for g in d.gaps},
            "intervals": {k: ([_clean(x) for x in v] if v is not None else None) for k, v in d.intervals.items()},
            "tolerance": d.tolerance,
            "verdict": d.verdict,
            "problems": list(d.problems),
            "notes": list(d.notes),
            "checks": list(self.checks),
            "diverged_at": d.diverged_at,
            "resolve": d.resolve,
            **({"seeds": dict(self.seeds)} if self.seeds else {}),
            **({"analysis": dict(self.analysis)} if self.analysis else {}),
            **({"curve": dict(self.curve)} if self.curve else {}),
            "actions": [{"problem": a.problem, "action": a.action, "why": a.why, "command": a.command}
                        for a in self.actions],
        }

    def metrics(self) -> dict[str, float]:
        """The MLflow metric names: error/<split>, gap/<name>."""
        out = {f"error/{k}": _clean(v) for k, v in self.diagnosis.errors.as_dict().items()}
        out.update({f"gap/{g.name}": _clean(g.value) for g in self.diagnosis.gaps})
        for name, ci in self.diagnosis.intervals.items():
            if ci is not None and ci[0] != ci[1]:  # a point "interval" (an exact human level) says nothing
                prefix = "gap" if name in GAP_TERMS else "error"
                out[f"{prefix}/{name}/lo"], out[f"{prefix}/{name}/hi"] = ci
        return out

    def tags(self) -> dict[str, str]:
        tags = {"dlexp.verdict": self.diagnosis.verdict, "dlexp.problems": ",".join(self.diagnosis.problems),
                "dlexp.task": self.task, "dlexp.metric": self.metric}
        if self.checks:
            tags["dlexp.checks"] = " | ".join(self.checks)[:5000]
        return tags
