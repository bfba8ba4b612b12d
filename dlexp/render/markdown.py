"""A run's diagnosis as Markdown: the Description of its MLflow run (the tag mlflow.note.content).

Pure: it reads the JSON document of a diagnosis (`Report.document()`, `diagnosis.json`) and, for a run that
follows another, the comparison document (`dlexp compare --json`); it imports nothing but the standard library and
the core's names (`dlexp.diagnosis`, itself light).
The names are the ones of the terminal table and of MLflow (error/train, gap/variance, dlexp.verdict), so a
reader can go from the UI to the terminal and back.

>>> doc = {"errors": {"human": 0.05, "train": 0.1, "train_dev": 0.15, "dev": 0.16, "test": 0.15},
...        "gaps": {"avoidable_bias": 0.05, "variance": 0.05, "data_mismatch": 0.01, "dev_overfitting": -0.01},
...        "verdict": "avoidable_bias", "problems": ["avoidable_bias", "variance"], "tolerance": 0.01}
>>> print(diagnosis(doc).splitlines()[0])
**Verdict: `avoidable_bias`** · problems, largest first: avoidable_bias, variance
"""

from __future__ import annotations

from collections.abc import Mapping

from dlexp.diagnosis import SPLITS
from dlexp.diagnosis import ALL_GAP_TERMS as GAP_TERMS  # the joint gap too (no train-dev error)

MAX_CHARS = 8000  # MLflow's limit on a run tag's value (mlflow.utils.validation.MAX_TAG_VAL_LENGTH)


def _fmt(value, metric: str, *, signed: bool = False) -> str:
    if value is None:
        return "–"
    if metric == "error_rate":
        return f"{value:+.2%}" if signed else f"{value:.2%}"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _ci(ci, metric: str, *, signed: bool = False) -> str:
    if not ci:
        return ""
    return f"[{_fmt(ci[0], metric, signed=signed)}, {_fmt(ci[1], metric, signed=signed)}]"


def _cell(text: str) -> str:
    """A table cell: a `|` would end the cell early."""
    return str(text).replace("|", "\\|")


def title(model: str | None, data: str | None, doc: Mapping | None = None) -> str | None:
    """"mlp on synthetic", "mlp on synthetic · 3 seeds pooled" (as `dlexp diagnose` heads its table).

    >>> title("mlp", "synthetic", {"seeds": {"seeds": [0, 1, 2]}})
    'mlp on synthetic · 3 seeds pooled'
    """
    text = f"{model} on {data}" if model and data else None
    seeds = (doc or {}).get("seeds") or {}
    if seeds:
        text = f"{text or 'seed group'} · {len(seeds.get('seeds', []))} seeds pooled"
    return text


def diagnosis(doc: Mapping, *, title: str | None = None) -> str:
    """The verdict, the table of errors and gaps with their 95% intervals, the notes and the next commands."""
    metric = doc.get("metric") or "error_rate"
    errors, gaps = doc.get("errors") or {}, doc.get("gaps") or {}
    iv, sizes = doc.get("intervals") or {}, doc.get("sizes") or {}
    tolerance = doc.get("tolerance")
    problems = list(doc.get("problems") or [])
    lines = []
    if title:
        lines += [f"### {title}", ""]
    head = f"**Verdict: `{doc.get('verdict', '?')}`**"
    if problems:
        head += f" · problems, largest first: {', '.join(problems)}"
    lines.append(head)
    if tolerance is not None:
        rule = ("a gap counts when its 95% interval's lower end reaches it"
                if any(iv.get(g) for g in GAP_TERMS) else "no split sizes, so no intervals: estimates only")
        lines += ["", f"Tolerance {_fmt(tolerance, metric)} ({rule})."]
    unit = "" if metric == "error_rate" else f" ({metric} in the target's unit)"
    lines += ["", f"| measure{unit} | value | 95% interval | n | |", "|---|---:|---|---:|---|"]
    human_ci = iv.get("human")
    lines.append(f"| error/human | {_fmt(errors.get('human'), metric)} | "
                 f"{_ci(human_ci, metric) if human_ci and human_ci[0] != human_ci[1] else ''} | | baseline |")
    for split in SPLITS:
        n = sizes.get(split)
        lines.append(f"| error/{split} | {_fmt(errors.get(split), metric)} | {_ci(iv.get(split), metric)} | "
                     f"{f'{n:,}' if n else ''} | |")
    for gap, (hi, lo) in GAP_TERMS.items():
        if gap not in gaps:
            continue
        value = gaps[gap]
        if gap in problems:
            flag = "**problem**"
        elif tolerance is not None and value is not None and round(value, 12) >= tolerance:
            flag = "uncertain"  # the estimate reaches the tolerance, its interval does not clear it
        else:
            flag = "ok"
        lines.append(f"| gap/{gap} | {_fmt(value, metric)} | {_ci(iv.get(gap), metric)} | | "
                     f"{flag} ({hi} − {lo}) |")
    for note in doc.get("notes") or []:
        lines += ["", f"> note: {note}"]
    for check in doc.get("checks") or []:
        lines += ["", f"> data check: {check}"]
    actions = doc.get("actions") or []
    if actions:
        lines += ["", "#### Next steps", ""]
        if doc.get("run_id") and any(a.get("command") for a in actions):
            lines += [f"`dlexp next {doc['run_id']} N` runs step N and compares the new run with this one.", ""]
        for i, a in enumerate(actions, 1):
            lines.append(f"{i}. **[{a.get('problem')}]** {a.get('action')} — {a.get('why')}")
            if a.get("command"):
                lines.append(f"   `{a['command']}`")
    elif doc.get("verdict") == "within_tolerance":
        lines += ["", "Every gap is within tolerance: this model is as good as this data and baseline allow."]
    return "\n".join(lines)


def comparison(doc: Mapping, *, metric: str = "error_rate") -> str:
    """B against A (`dlexp compare --json`): per split and per gap, A, B, B − A and its 95% interval."""
    metric = doc.get("metric") or metric
    lines = [f"#### Compared with run `{doc.get('a')}`", ""]
    if doc.get("summary"):
        lines += [str(doc["summary"]), ""]
    verdicts = doc.get("verdicts") or {}
    if verdicts and not doc.get("summary"):
        lines += [f"Verdict `{verdicts.get('a')}` → `{verdicts.get('b')}`.", ""]
    splits = doc.get("splits") or {}
    tested = any((s or {}).get("interval") for s in splits.values())  # no empty columns without intervals
    if splits:
        lines += (["| error | A | B | B − A | 95% interval | p | method |", "|---|---:|---:|---:|---|---:|---|"]
                  if tested else ["| error | A | B | B − A |", "|---|---:|---:|---:|"])
        for split in SPLITS:
            s = splits.get(split)
            if not s:
                continue
            p = s.get("p_value")
            row = (f"| error/{split} | {_fmt(s.get('a'), metric)} | {_fmt(s.get('b'), metric)} | "
                   f"{_fmt(s.get('diff'), metric, signed=True)} |")
            if tested:
                row += (f" {_ci(s.get('interval'), metric, signed=True)} | {'' if p is None else f'{p:.3g}'} | "
                        f"{s.get('method') or ''} |")
            lines.append(row)
    gaps = doc.get("gaps") or {}
    if gaps:
        lines += ["", "| gap | A | B | B − A | 95% interval |" if tested else "| gap | A | B | B − A |",
                  "|---|---:|---:|---:|---|" if tested else "|---|---:|---:|---:|"]
        for gap in GAP_TERMS:
            g = gaps.get(gap)
            if g:
                lines.append(f"| gap/{gap} | {_fmt(g.get('a'), metric)} | {_fmt(g.get('b'), metric)} | "
                             f"{_fmt(g.get('diff'), metric, signed=True)} |"
                             + (f" {_ci(g.get('interval'), metric, signed=True)} |" if tested else ""))
    for note in doc.get("notes") or []:
        lines += ["", f"> note: {note}"]
    return "\n".join(lines)


def lineage(follows: str, action: str | None, *, name: str | None = None) -> str:
    """One line saying which run and which of its next steps this run follows."""
    what = f" — next step “{_cell(action)}”" if action else ""
    return f"Follows run `{follows}`{f' ({name})' if name else ''}{what}."


def description(doc: Mapping, *, title: str | None = None, follows: str | None = None,
                action: str | None = None, compared: Mapping | None = None) -> str:
    """The whole Description of a run, cut to what an MLflow tag holds.

    The comparison and the lineage come first when there is one: for a run that follows another, whether
    the step helped is the first question.
    """
    parts = []
    if follows:
        parts.append(lineage(follows, action))
    if compared:
        parts.append(comparison(compared, metric=doc.get("metric") or "error_rate"))
    parts.append(diagnosis(doc, title=title))
    return fit("\n\n".join(parts))


def fit(text: str, limit: int = MAX_CHARS) -> str:
    """`text` if it fits an MLflow tag, else cut at a line end with a note that the rest is in diagnosis.json."""
    if len(text) <= limit:
        return text
    tail = "\n\n… (cut to fit MLflow's tag limit; the whole diagnosis is in diagnosis.json)"
    cut = text[: limit - len(tail)]
    return cut[: cut.rfind("\n")] + tail if "\n" in cut else cut + tail
