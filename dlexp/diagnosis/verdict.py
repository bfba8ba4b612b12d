"""The verdict: four errors against a human-level baseline -> gaps with intervals -> the largest confirmed problem.

Pure and stdlib-only: numbers in, frozen dataclasses out.

>>> d = diagnose(SplitErrors(human=0.01, train=0.15, train_dev=0.155, dev=0.16, test=0.16))
>>> d.verdict, d.problems
('avoidable_bias', ('avoidable_bias',))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from dlexp.diagnosis.intervals import intervals
from dlexp.diagnosis.splits import ALL_GAP_TERMS, DEFAULT_TOLERANCE, JOINT_GAP, SPLITS, SplitErrors, gap_terms


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
    human_known: bool = True  # False: no baseline (baseline.human_error=none), avoidable bias unknown

    def gap(self, name: str) -> Gap:
        return next(g for g in self.gaps if g.name == name)


def diagnose(errors: SplitErrors, *, tolerance: float = DEFAULT_TOLERANCE,
             diverged_at: int | None = None, diverged: bool = False,
             sizes: Mapping[str, int | None] | None = None, human_range: Sequence[float] | None = None,
             spread: Mapping[str, float] | None = None, n_seeds: int = 1,
             given_intervals: Mapping[str, Sequence[float] | None] | None = None,
             human_known: bool = True) -> Diagnosis:
    """Measure the four gaps with their 95% intervals and name the largest confirmed problem as the verdict.

    A gap is a problem when its interval's lower end reaches `tolerance`. Without split sizes there is no
    interval, and the estimate itself is held against the tolerance. When the largest gap's estimate
    reaches the tolerance but its interval does not clear it, the verdict is ``inconclusive`` and
    `Diagnosis.resolve` says how many more examples of which split would settle a gap of that size.
    A run whose loss became non-finite gets the verdict ``diverged`` whatever its gaps say.
    Without a baseline (`human_known=False`) avoidable bias is unknown, at most the training error: it is
    never a problem, and the verdict rests on the other three gaps.
    Without a train-dev error (`errors.train_dev` None) the train-to-dev gap cannot be split into variance and
    data mismatch: it is judged as one gap, ``variance_or_mismatch``, and a note says so.

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
    >>> d = diagnose(SplitErrors(0.0, 0.30, 0.305, 0.31, 0.31), human_known=False)
    >>> d.verdict, d.gap("avoidable_bias").problem
    ('within_tolerance', False)
    >>> d = diagnose(SplitErrors(0.01, 0.02, None, 0.08, 0.08))
    >>> d.verdict, [g.name for g in d.gaps]
    ('variance_or_mismatch', ['avoidable_bias', 'variance_or_mismatch', 'dev_overfitting'])
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be a non-negative number, got {tolerance!r}")
    if not human_known:
        errors = replace(errors, human=0.0)  # avoidable bias = train - 0: its upper end
    values = errors.as_dict()
    iv = intervals(errors, sizes, human_range=human_range, spread=spread, n_seeds=n_seeds,
                   given=given_intervals)
    gaps = []
    for name, (hi, lo) in gap_terms(errors).items():
        value = values[hi] - values[lo]
        ci = iv[name]
        # rounding guards against 0.16 - 0.15 = 0.009999... being called below a 0.01 tolerance
        problem = round(value if ci is None else ci[0], 12) >= tolerance
        if name == "avoidable_bias" and not human_known:  # unknown: somewhere in [0, training error]
            problem, ci = False, (0.0, ci[1]) if ci is not None else None
        gaps.append(Gap(name, value, problem, ci))
    if not human_known:
        iv = dict(iv, avoidable_bias=gaps[0].interval, human=None)
    judged = [g for g in gaps if human_known or g.name != "avoidable_bias"]
    problems = tuple(g.name for g in sorted((g for g in judged if g.problem), key=lambda g: -g.value))
    largest = max(judged, key=lambda g: g.value)
    uncertain = [g for g in judged if round(g.value, 12) >= tolerance and not g.problem]
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
    if errors.train_dev is None:
        joint = next(g for g in gaps if g.name == JOINT_GAP)
        notes.append(f"No train-dev error: the gap from train to dev ({joint.value:.4g}) cannot be split into "
                     f"variance and data mismatch, so it is judged as one gap, {JOINT_GAP}; measure a train-dev "
                     "split (held out from the training data) to tell them apart.")
    if not human_known:
        notes.append(f"No baseline (baseline.human_error=none): avoidable bias is unknown, at most the training "
                     f"error ({errors.train:.4g}); the verdict rests on the other gaps.")
    elif errors.train < (iv["human"] or (errors.human,))[0]:  # below a range's lower end, when it is a range
        floor = (iv["human"] or (errors.human,))[0]
        notes.append(
            f"Training error ({errors.train:.4g}) is below the human-level error ({floor:.4g}"
            f"{', the lower end of its range' if floor != errors.human else ''}): "
            "the human level no longer estimates Bayes error well, so avoidable bias cannot be judged."
        )
    if n_seeds > 1:
        notes.append(f"Pooled over {n_seeds} seeds: errors are the means, and the intervals include the "
                     "seed-to-seed spread.")
    return Diagnosis(errors, tuple(gaps), verdict, problems, tolerance, tuple(notes), diverged_at, iv, resolve,
                     human_known)


def _resolve(gap: Gap, errors: SplitErrors, sizes: Mapping[str, int | None], tolerance: float, *,
             human_range=None, spread=None, n_seeds: int = 1, given=None) -> dict:
    """How many more examples would make an interval around a gap of this size clear `tolerance`.

    First the smaller of the gap's two splits alone (train for avoidable_bias; ties: the gap's larger term);
    when that cannot do it, both splits grown by the same factor. `more` maps split -> extra examples; it is
    empty when neither works (a human-level range or the seed spread too wide), and `reason` says why.
    """
    a, b = ALL_GAP_TERMS[gap.name]
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
