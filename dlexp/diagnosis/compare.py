"""Did run B help? B against A, split by split and gap by gap, paired wherever the two saw the same examples.

Two runs scored on the same examples (same rows, same labels, same order: equal fingerprints) differ far
less by chance than two independent samples, so each split is compared with a paired method where it can:

- classification: McNemar's exact test (a two-sided exact binomial test on the discordant examples, those
  one run got wrong and the other right) and Newcombe's paired score interval for the difference of the two
  error rates (Newcombe 1998, "Improved confidence intervals for the difference between binomial proportions
  based on paired data", Statistics in Medicine 17:2635, method 10: square-and-add of the two Wilson
  intervals with the estimated correlation of the two rates);
- regression (RMSE or MAE): a paired percentile bootstrap over examples (the same resampled examples for
  both runs), with a bootstrap p-value.

Where the example sets differ, or a run kept no per-example outcomes, the split falls back to independent
intervals, the way a run's own gaps get theirs: Newcombe's hybrid score interval (MOVER of two Wilson
intervals) with a two-proportion score test for error rates; an independent bootstrap (or MOVER of the runs'
own stored intervals) for RMSE/MAE. Each split says which method it used.

A gap's change is the difference of two split differences on different examples (independent of each
other), so its interval is MOVER on the two split-difference intervals (or the bootstrap of the two, for
regression). The human level is a fixed number here: a change of it shifts avoidable_bias.

Pure: plain mappings in (the runs' JSON documents, as `Report.document()` writes them, and their outcomes),
frozen dataclasses out; numpy and scipy are imported when `compare()` runs, never on import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from dlexp.diagnosis.intervals import mover, wilson
from dlexp.diagnosis.splits import ALL_GAP_TERMS, GAP_TERMS, JOINT_GAP, SPLITS, Z95

PAIRED, INDEPENDENT = "paired", "independent"
LEVEL = 0.95
N_BOOT = 2000


@dataclass(frozen=True)
class Outcomes:
    """One run's per-example outcomes.

    `values[split]`: classification: a boolean array, True where the example was misclassified; regression:
    the absolute error |prediction - target| of each example, in the target's unit. `fingerprints[split]`:
    a hash of the split's rows and labels (in order); two runs are paired on a split when theirs match.
    """

    task: str
    metric: str
    values: Mapping[str, Any]
    fingerprints: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitChange:
    split: str
    a: float | None
    b: float | None
    diff: float | None                          # b - a
    interval: tuple[float, float] | None        # 95%, for diff
    p_value: float | None                       # two-sided, for "no difference"
    method: str                                 # paired | independent
    test: str | None                            # which test gave p_value
    interval_method: str | None                 # which method gave interval
    n: tuple[int | None, int | None] = (None, None)  # examples of A and of B
    discordant: Mapping[str, int] | None = None  # paired classification: {"a_only": A wrong, B right; "b_only"}
    reason: str | None = None                   # why the split is not paired

    @property
    def significant(self) -> bool:
        """The 95% interval excludes 0 (and the test, where there is one, agrees: p < 0.05)."""
        if self.interval is None or self.diff is None:
            return False
        clear = self.interval[0] > 0 or self.interval[1] < 0
        return clear and (self.p_value is None or self.p_value < 1 - LEVEL)


@dataclass(frozen=True)
class GapChange:
    gap: str
    a: float | None
    b: float | None
    diff: float | None                          # b - a
    interval: tuple[float, float] | None        # 95%, for diff
    a_interval: tuple[float, float] | None = None  # each run's own 95% interval of the gap
    b_interval: tuple[float, float] | None = None

    @property
    def change(self) -> str:
        """lowered | raised (the interval of the change excludes 0) | unchanged | unknown (no interval)."""
        if self.interval is None or self.diff is None:
            return "unknown"
        if self.interval[1] < 0:
            return "lowered"
        if self.interval[0] > 0:
            return "raised"
        return "unchanged"


@dataclass(frozen=True)
class Comparison:
    a: str | None                               # run ids
    b: str | None
    task: str
    metric: str
    splits: Mapping[str, SplitChange]
    gaps: Mapping[str, GapChange]
    verdicts: tuple[str | None, str | None]
    summary: str
    tolerance: float | None = None              # B's
    notes: tuple[str, ...] = ()

    def improved(self, split: str = "dev") -> bool:
        """B's error on `split` is significantly lower than A's."""
        s = self.splits.get(split)
        return bool(s and s.significant and s.diff < 0)

    def document(self) -> dict:
        """The JSON of `dlexp compare --json`."""
        return {
            "a": self.a,
            "b": self.b,
            "task": self.task,
            "metric": self.metric,
            "splits": {name: {"a": _clean(s.a), "b": _clean(s.b), "diff": _clean(s.diff),
                              "interval": _pair(s.interval), "p_value": _p(s.p_value),
                              "method": s.method, "test": s.test, "interval_method": s.interval_method,
                              "significant": s.significant, "n": {"a": s.n[0], "b": s.n[1]},
                              "discordant": dict(s.discordant) if s.discordant else None, "reason": s.reason}
                       for name, s in self.splits.items()},
            "gaps": {name: {"a": _clean(g.a), "b": _clean(g.b), "diff": _clean(g.diff),
                            "interval": _pair(g.interval), "change": g.change,
                            "a_interval": _pair(g.a_interval), "b_interval": _pair(g.b_interval)}
                     for name, g in self.gaps.items()},
            "verdicts": {"a": self.verdicts[0], "b": self.verdicts[1]},
            "tolerance": self.tolerance,
            "summary": self.summary,
            "notes": list(self.notes),
        }


def _clean(x):
    return None if x is None else (round(float(x), 12) if math.isfinite(x) else float(x))


def _p(p):
    """A p-value to 6 significant digits (1.66162e-16 stays itself, not 0)."""
    return None if p is None else float(f"{p:.6g}")


def _pair(ci):
    return None if ci is None else [_clean(ci[0]), _clean(ci[1])]


# --------------------------------------------------------------------------------------------------
# The statistics, on counts: testable against reference implementations by table.


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """McNemar's exact test: two-sided p-value of the exact binomial test on the discordant pairs.

    `a_only`: examples only A got wrong; `b_only`: only B. Under "no difference" each discordant example is
    A's or B's with probability 1/2, so p = min(1, 2 P(X <= min(a_only, b_only))), X ~ Binomial(a_only +
    b_only, 1/2); 1 when there are no discordant examples.

    >>> round(mcnemar_exact(2, 12), 4)
    0.0129
    >>> mcnemar_exact(0, 0)
    1.0
    """
    n = int(a_only) + int(b_only)
    if n == 0:
        return 1.0
    from scipy.stats import binom

    return float(min(1.0, 2.0 * binom.cdf(min(a_only, b_only), n, 0.5)))


def newcombe_paired(both: int, b_only: int, a_only: int, neither: int, *, z: float = Z95,
                    ) -> tuple[float, float]:
    """Newcombe's paired score interval (1998, method 10) for err_B - err_A on the same examples.

    Counts of the paired table: `both` wrong, `b_only` (B wrong, A right), `a_only` (A wrong, B right),
    `neither`. Wilson intervals (l1, u1) for err_B and (l2, u2) for err_A are combined by square-and-add
    with phi, the correlation of the two error indicators (continuity-corrected towards 0):

        lower = D - sqrt((p1 - l1)^2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)^2)
        upper = D + sqrt((p2 - l2)^2 - 2 phi (p2 - l2)(u1 - p1) + (u1 - p1)^2)

    >>> [round(x, 4) for x in newcombe_paired(59, 6, 16, 80)]  # Fagerland et al. (2017), Table 8.x
    [-0.1186, -0.0046]
    """
    n = both + b_only + a_only + neither
    if n == 0:
        raise ValueError("a paired interval needs at least one example")
    r1, r2 = both + b_only, both + a_only  # B's and A's wrong examples
    p1, p2 = r1 / n, r2 / n
    l1, u1 = wilson(p1, n, z=z)
    l2, u2 = wilson(p2, n, z=z)
    marginals = r1 * (n - r1) * r2 * (n - r2)
    phi = 0.0
    if marginals > 0:
        cross = both * neither - b_only * a_only
        if cross > n / 2:
            phi = (cross - n / 2) / math.sqrt(marginals)
        elif cross < 0:
            phi = cross / math.sqrt(marginals)
    d = p1 - p2
    lo = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    hi = d + math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    return max(-1.0, lo), min(1.0, hi)


def two_proportion_p(p1: float, n1: int, p2: float, n2: int) -> float:
    """Two-sided p-value of the pooled score (z) test for p1 = p2 on independent samples.

    >>> round(two_proportion_p(0.10, 1000, 0.13, 1000), 4)
    0.0355
    """
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(2 * NormalDist().cdf(-abs(p1 - p2) / se))


# --------------------------------------------------------------------------------------------------
# Bootstrap (regression): numpy, imported here only.


def _bootstrap(values_a, values_b, metric: str, *, paired: bool, n_boot: int, rng):
    """`n_boot` replicates of stat(B) - stat(A) (scipy's bootstrap): the same resampled examples for both
    runs when `paired`, each run's own otherwise."""
    import numpy as np
    from scipy.stats import bootstrap

    def prep(v):
        v = np.asarray(v, dtype=np.float64).ravel()
        return v * v if metric == "rmse" else np.abs(v)

    def diff(a, b, axis=-1):
        ma, mb = np.mean(a, axis=axis), np.mean(b, axis=axis)
        return np.sqrt(mb) - np.sqrt(ma) if metric == "rmse" else mb - ma

    va, vb = prep(values_a), prep(values_b)
    batch = max(1, 4_000_000 // max(len(va), len(vb), 1))  # resampled indices held at once: 32 MB of int64
    res = bootstrap((va, vb), diff, paired=paired, vectorized=True, n_resamples=n_boot, batch=batch,
                    method="percentile", confidence_level=LEVEL, random_state=rng)
    return res.bootstrap_distribution


def _percentile(reps) -> tuple[float, float]:
    import numpy as np

    lo, hi = np.percentile(reps, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return float(lo), float(hi)


def _boot_p(reps) -> float:
    """Two-sided bootstrap p-value for "no difference": twice the smaller tail at 0 (1 when all are 0)."""
    import numpy as np

    return float(min(1.0, 2 * min(np.mean(reps <= 0), np.mean(reps >= 0))))


def _stat(values, metric: str) -> float:
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    return float(np.sqrt(np.mean(v * v))) if metric == "rmse" else float(np.mean(np.abs(v)))


# --------------------------------------------------------------------------------------------------
# The comparison of two runs.


def _split(name: str, a: Mapping, b: Mapping, oa: Outcomes | None, ob: Outcomes | None, *,
           n_boot: int, rng) -> tuple[SplitChange, Any]:
    """One split's change, and the bootstrap replicates of the difference (regression) for the gaps."""
    task, metric = a.get("task", "classification"), a.get("metric", "error_rate")
    ea, eb = (a.get("errors") or {}).get(name), (b.get("errors") or {}).get(name)
    na, nb = (a.get("sizes") or {}).get(name), (b.get("sizes") or {}).get(name)
    va = None if oa is None else oa.values.get(name)
    vb = None if ob is None else ob.values.get(name)
    fa = None if oa is None else oa.fingerprints.get(name)
    fb = None if ob is None else ob.fingerprints.get(name)
    if va is None or vb is None:
        missing = [label for label, o, v in (("A", oa, va), ("B", ob, vb)) if o is None or v is None]
        reason = f"no per-example outcomes kept for run {' and '.join(missing)}"
    elif fa is None or fb is None or fa != fb or len(va) != len(vb):
        reason = "the runs were scored on different examples"
    else:
        reason = None
    if reason is None and len(va) > 0:
        if task == "classification":
            import numpy as np

            wa, wb = np.asarray(va, dtype=bool), np.asarray(vb, dtype=bool)
            both = int(np.sum(wa & wb))
            a_only = int(np.sum(wa & ~wb))
            b_only = int(np.sum(~wa & wb))
            n = len(wa)
            ea, eb = (both + a_only) / n, (both + b_only) / n
            ci = newcombe_paired(both, b_only, a_only, n - both - a_only - b_only)
            return SplitChange(name, ea, eb, eb - ea, ci, mcnemar_exact(a_only, b_only), PAIRED, "mcnemar_exact",
                               "newcombe_paired", (n, n), {"a_only": a_only, "b_only": b_only}), None
        reps = _bootstrap(va, vb, metric, paired=True, n_boot=n_boot, rng=rng)
        ea = ea if ea is not None else _stat(va, metric)
        eb = eb if eb is not None else _stat(vb, metric)
        return SplitChange(name, ea, eb, eb - ea, _percentile(reps), _boot_p(reps), PAIRED, "paired_bootstrap",
                           "paired_bootstrap", (len(va), len(vb))), reps
    # independent
    if ea is None or eb is None:
        return SplitChange(name, ea, eb, None, None, None, INDEPENDENT, None, None, (na, nb),
                           reason=reason or "an error is missing"), None
    pooled = bool(a.get("seeds") or b.get("seeds"))  # a seed group: its stored intervals hold the seed spread
    if task == "classification":
        ca = _interval(a, name) if pooled else wilson(ea, na)
        cb = _interval(b, name) if pooled else wilson(eb, nb)
        ci = None if ca is None or cb is None else mover(eb, cb, ea, ca)
        p = two_proportion_p(eb, nb, ea, na) if na and nb and not pooled else None
        return SplitChange(name, ea, eb, eb - ea, ci, p, INDEPENDENT, "two_proportion_z" if p is not None else None,
                           ("mover" if pooled else "newcombe") if ci else None, (na, nb), reason=reason), None
    if va is not None and vb is not None and len(va) and len(vb):
        reps = _bootstrap(va, vb, metric, paired=False, n_boot=n_boot, rng=rng)
        return SplitChange(name, ea, eb, eb - ea, _percentile(reps), _boot_p(reps), INDEPENDENT, "bootstrap",
                           "bootstrap", (len(va), len(vb)), reason=reason), reps
    ca = (a.get("intervals") or {}).get(name)
    cb = (b.get("intervals") or {}).get(name)
    ci = None if ca is None or cb is None else mover(eb, tuple(cb), ea, tuple(ca))
    return SplitChange(name, ea, eb, eb - ea, ci, None, INDEPENDENT, None, "mover" if ci else None, (na, nb),
                       reason=reason), None


def _gap_value(doc: Mapping, gap: str) -> float | None:
    if (doc.get("gaps") or {}).get(gap) is not None:
        return doc["gaps"][gap]
    hi, lo = ALL_GAP_TERMS[gap]
    e = doc.get("errors") or {}
    return None if e.get(hi) is None or e.get(lo) is None else e[hi] - e[lo]


def _interval(doc: Mapping, name: str):
    ci = (doc.get("intervals") or {}).get(name)
    return None if ci is None else (float(ci[0]), float(ci[1]))


def compare(a: Mapping, b: Mapping, *, outcomes_a: Outcomes | None = None, outcomes_b: Outcomes | None = None,
            n_boot: int = N_BOOT, seed: int = 0) -> Comparison:
    """Compare run B with run A: `a` and `b` are the runs' JSON documents (`Report.document()`).

    Raises ValueError when the runs cannot be compared (different tasks or metrics).

    >>> doc = {"task": "classification", "metric": "error_rate", "verdict": "variance",
    ...        "errors": {"human": 0.0, "train": 0.05, "train_dev": 0.15, "dev": 0.15, "test": 0.15},
    ...        "sizes": {"train": 4000, "train_dev": 1000, "dev": 1000, "test": 1000}}
    >>> c = compare(doc, dict(doc, errors=dict(doc["errors"], train_dev=0.10, dev=0.10, test=0.10)))
    >>> c.splits["dev"].method, round(c.splits["dev"].diff, 4), c.gaps["variance"].change
    ('independent', -0.05, 'lowered')
    """
    task_a, task_b = a.get("task", "classification"), b.get("task", "classification")
    metric_a, metric_b = a.get("metric", "error_rate"), b.get("metric", "error_rate")
    if task_a != task_b:
        raise ValueError(f"run A is {task_a} and run B is {task_b}: their errors are not in the same unit")
    if metric_a != metric_b:
        raise ValueError(f"run A measures {metric_a} and run B {metric_b}: their errors are not in the same unit")
    for label, o in (("A", outcomes_a), ("B", outcomes_b)):
        if o is not None and (o.task != task_a or o.metric != metric_a):
            raise ValueError(f"the outcomes of run {label} ({o.task}, {o.metric}) do not match its document")
    from numpy.random import SeedSequence, default_rng

    streams = SeedSequence(seed).spawn(len(SPLITS))
    splits, reps = {}, {}
    for name, stream in zip(SPLITS, streams):
        splits[name], reps[name] = _split(name, a, b, outcomes_a, outcomes_b, n_boot=n_boot,
                                          rng=default_rng(stream))
    ha, hb = (a.get("errors") or {}).get("human"), (b.get("errors") or {}).get("human")
    gaps = {}
    terms = dict(GAP_TERMS)
    if any(JOINT_GAP in (doc.get("gaps") or {}) for doc in (a, b)):  # a run without train-dev: its one gap too
        terms[JOINT_GAP] = ALL_GAP_TERMS[JOINT_GAP]
    for gap, (hi, lo) in terms.items():
        ga, gb = _gap_value(a, gap), _gap_value(b, gap)
        d_hi = splits[hi]
        diff = ci = None
        if lo == "human":
            if d_hi.diff is not None and ha is not None and hb is not None:
                shift = hb - ha
                diff = d_hi.diff - shift
                ci = None if d_hi.interval is None else (d_hi.interval[0] - shift, d_hi.interval[1] - shift)
        else:
            d_lo = splits[lo]
            if d_hi.diff is not None and d_lo.diff is not None:
                diff = d_hi.diff - d_lo.diff
                if reps[hi] is not None and reps[lo] is not None:
                    ci = _percentile(reps[hi] - reps[lo])
                elif d_hi.interval is not None and d_lo.interval is not None:
                    ci = mover(d_hi.diff, d_hi.interval, d_lo.diff, d_lo.interval)
        if diff is None and ga is not None and gb is not None:
            diff = gb - ga
        gaps[gap] = GapChange(gap, ga, gb, diff, ci, _interval(a, gap), _interval(b, gap))
    verdicts = (a.get("verdict"), b.get("verdict"))
    notes = []
    if ha is not None and hb is not None and ha != hb:
        notes.append(f"The runs hold different human levels ({ha:.4g} and {hb:.4g}): avoidable_bias changes "
                     "by that much with no change in the model.")
    unpaired = [s for s in splits.values() if s.method == INDEPENDENT and s.reason]
    if unpaired:
        why = sorted({s.reason for s in unpaired})
        notes.append(f"Independent intervals on {', '.join(s.split for s in unpaired)}: {'; '.join(why)}.")
    return Comparison(a.get("run_id"), b.get("run_id"), task_a, metric_a, splits, gaps, verdicts,
                      summarize(gaps, verdicts, metric_a), b.get("tolerance"), tuple(notes))


def _fmt(x: float, metric: str, *, sign: bool = False) -> str:
    if metric == "error_rate":
        return f"{x:+.2%}" if sign else f"{x:.2%}"
    return f"{x:+.4g}" if sign else f"{x:.4g}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def summarize(gaps: Mapping[str, GapChange], verdicts, metric: str) -> str:
    """One plain sentence: which gaps B lowered or raised significantly, which it left unchanged.

    >>> g = {"variance": GapChange("variance", 0.1, 0.05, -0.05, (-0.07, -0.03)),
    ...      "data_mismatch": GapChange("data_mismatch", 0.0, 0.004, 0.004, (-0.01, 0.02))}
    >>> print(summarize(g, ("variance", "within_tolerance"), "error_rate"))  # doctest: +NORMALIZE_WHITESPACE
    B lowered variance (-5.00%, 95% [-7.00%, -3.00%]) and left data_mismatch unchanged within noise;
    verdict variance -> within_tolerance.
    """
    parts = []
    for word in ("lowered", "raised"):
        moved = [f"{g.gap} ({_fmt(g.diff, metric, sign=True)}, 95% [{_fmt(g.interval[0], metric)}, "
                 f"{_fmt(g.interval[1], metric)}])" for g in gaps.values() if g.change == word]
        if moved:
            parts.append(f"{word} {_and(moved)}")
    same = [g.gap for g in gaps.values() if g.change == "unchanged"]
    if same:
        parts.append(f"left {_and(same)} unchanged within noise")
    unknown = [g.gap for g in gaps.values() if g.change == "unknown"]
    if unknown:
        parts.append(f"cannot say for {_and(unknown)} (no interval)")
    head = ("B " + _and(parts)) if parts else "B changed nothing measurable"
    if not any(g.change in ("lowered", "raised") for g in gaps.values()):
        head = head.replace("B left", "B changed no gap significantly: it left", 1)
    a, b = verdicts
    tail = f"verdict {a} -> {b}" if a != b else f"verdict still {a}"
    return f"{head}; {tail}."
