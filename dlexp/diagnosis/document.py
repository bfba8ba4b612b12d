"""The JSON document: one shape for `dlexp diagnose --json`, `diagnosis.json` and the MLflow names."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dlexp.diagnosis.actions import Action, recommend
from dlexp.diagnosis.splits import ALL_GAP_TERMS, DEFAULT_TOLERANCE, SPLITS, SplitErrors
from dlexp.diagnosis.verdict import Diagnosis, diagnose



def _clean(x: float | None) -> float | None:
    """0.0578 rather than 0.057800000000000004: the difference of two rates, rounded to 12 decimals."""
    return round(x, 12) if x is not None and math.isfinite(x) else x


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
    # where the human level came from: {"source": "given" | "known" | "estimated" | "none"}; an estimated
    # Bayes error adds lower, upper, method and the reference model's errors ("reference": split -> error)
    baseline: Mapping | None = None
    start: Mapping | None = None  # model.init_from: run_id, loaded / total tensors, new ones, frozen, tokenizer
    sampled: Mapping[str, int] | None = None  # split -> its full size, when its error came from a sample of `sizes`
    # where the errors came from when dlexp did not measure them itself: {"metrics": {split: the run's metric
    # name}, "accuracy": bool} for a run another tool logged, {"tool": "lightning-callback"} for dlexp.lightning
    source: Mapping | None = None
    labels: Mapping | None = None  # wrong labels per split: count, rate, interval (see diagnosis/labels.py)

    # the diagnosis at hand, for notebooks: report.verdict, report.problems, report.gap("variance").interval
    @property
    def verdict(self) -> str:
        return self.diagnosis.verdict

    @property
    def problems(self) -> tuple[str, ...]:
        return self.diagnosis.problems

    @property
    def gaps(self) -> dict:
        """Gap name -> `Gap` (value, problem, 95% interval or None)."""
        return {g.name: g for g in self.diagnosis.gaps}

    def gap(self, name: str):
        return self.diagnosis.gap(name)

    def _known(self, name: str) -> bool:
        """False for the human level and avoidable bias of a run without a baseline."""
        return self.diagnosis.human_known or name not in ("human", "avoidable_bias")

    def document(self) -> dict:
        d = self.diagnosis
        return {
            "run_id": self.run_id,
            "task": self.task,
            "metric": self.metric,
            "errors": {k: _clean(v) if self._known(k) else None for k, v in d.errors.as_dict().items()},
            "sizes": {s: self.sizes.get(s) for s in SPLITS},
            **({"sampled": {s: {"n": self.sizes.get(s), "of": m} for s, m in self.sampled.items()}}
               if self.sampled else {}),
            "gaps": {g.name: _clean(g.value) if self._known(g.name) else None for g in d.gaps},
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
            **({"baseline": dict(self.baseline)} if self.baseline else {}),
            **({"init_from": dict(self.start)} if self.start else {}),
            **({"source": dict(self.source)} if self.source else {}),
            **({"label_issues": dict(self.labels)} if self.labels else {}),
            "actions": [{"problem": a.problem, "action": a.action, "why": a.why, "command": a.command}
                        for a in self.actions],
        }

    def start_line(self) -> str | None:
        """One line saying which run the weights came from (model.init_from); None for a fresh start."""
        s = self.start
        if not s:
            return None
        new = s.get("new") or []
        text = (f"started from run {s['run_id']}: {s['loaded']} of {s['total']} weight tensors"
                + (f"; new: {', '.join(new[:4])}{' ...' if len(new) > 4 else ''}" if new else ""))
        if s.get("frozen"):
            text += f"; body frozen ({s['frozen']['trainable']:,} parameters trained)"
        if s.get("tokenizer"):
            text += "; its tokenizer"
        return text

    def metrics(self) -> dict[str, float]:
        """The MLflow metric names: error/<split>, gap/<name>."""
        out = {f"error/{k}": _clean(v) for k, v in self.diagnosis.errors.as_dict().items()
               if self._known(k) and v is not None}
        out.update({f"gap/{g.name}": _clean(g.value) for g in self.diagnosis.gaps if self._known(g.name)})
        for name, ci in self.diagnosis.intervals.items():
            if ci is not None and ci[0] != ci[1]:  # a point "interval" (an exact human level) says nothing
                prefix = "gap" if name in ALL_GAP_TERMS else "error"
                out[f"{prefix}/{name}/lo"], out[f"{prefix}/{name}/hi"] = ci
        for split, value in ((self.baseline or {}).get("reference") or {}).items():
            out[f"reference/{split}"] = _clean(value)  # the reference model's errors (an estimated baseline)
        return out

    def tags(self) -> dict[str, str]:
        tags = {"dlexp.verdict": self.diagnosis.verdict, "dlexp.problems": ",".join(self.diagnosis.problems),
                "dlexp.task": self.task, "dlexp.metric": self.metric}
        if self.checks:
            tags["dlexp.checks"] = " | ".join(self.checks)[:5000]
        if self.baseline:
            tags["dlexp.human_source"] = str(self.baseline.get("source"))
            if self.baseline.get("method"):
                tags["dlexp.bayes_method"] = str(self.baseline["method"])[:5000]
        return tags


def what_if(errors: SplitErrors, *, sizes: Mapping[str, int | None] | None = None,
            tolerance: float = DEFAULT_TOLERANCE, human_range: Sequence[float] | None = None,
            human_known: bool = True) -> Report:
    """The report of figures typed in (`dlexp diagnose --human .. --train ..`, `dlexp.diagnose`): no run, so
    no commands.

    >>> what_if(SplitErrors(0.01, 0.08, 0.09, 0.10, 0.11)).diagnosis.verdict
    'avoidable_bias'
    """
    sizes = sizes or {}
    d = diagnose(errors, tolerance=tolerance, sizes=sizes, human_range=human_range, human_known=human_known)
    return Report(d, recommend(d, None), sizes={k: v for k, v in sizes.items() if v})
