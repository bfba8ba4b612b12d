"""Terminal output: the only module that imports rich. Same names as MLflow and the JSON document."""

from __future__ import annotations

import shlex

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dlexp.diagnosis import ALL_GAP_TERMS, SPLITS, Report

_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        import sys

        # piped output has no width to follow: keep tables and commands whole rather than cut at 80
        _console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    return _console


def _fmt(value, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2%}" if metric == "error_rate" else f"{value:.4g}"


def _fmt_ci(ci, metric: str) -> str:
    if ci is None:
        return ""
    return f"[{_fmt(ci[0], metric)}, {_fmt(ci[1], metric)}]"


def diagnosis(report: Report, *, title: str | None = None, out: Console | None = None) -> None:
    out = out or console()
    d, metric = report.diagnosis, report.metric
    iv = d.intervals or {}
    head = "dlexp diagnosis" + (f" · {title}" if title else "") + (f" · run {report.run_id}" if report.run_id else "")
    table = Table(title=head, box=box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("95% interval", justify="center")
    table.add_column("n", justify="right")
    baseline = report.baseline or {}
    reference = baseline.get("reference") or {}
    if reference:  # the reference model of an estimated baseline, beside the network
        table.add_column(baseline.get("reference_model", "reference"), justify="right")
    table.add_column("", justify="left")
    unit = "" if metric == "error_rate" else f", {metric} in the target's unit"
    human_ci = iv.get("human")
    extra = [""] if reference else []
    if not d.human_known:
        table.add_row("error/human", "unknown", "", "", *extra, "no baseline (baseline.human_error=none)")
    else:
        what = (f"ESTIMATED Bayes error{unit}: no human level known" if baseline.get("source") == "estimated"
                else f"baseline (stands in for Bayes error{unit})")
        table.add_row("error/human", _fmt(d.errors.human, metric),
                      _fmt_ci(human_ci, metric) if human_ci and human_ci[0] != human_ci[1] else "", "", *extra, what)
    sampled = report.sampled or {}
    for split in SPLITS:
        n = report.sizes.get(split)
        ref = [_fmt(reference.get(split), metric) if split in reference else ""] if reference else []
        note = f"sampled {n:,} of {sampled[split]:,}" if split in sampled and n else ""
        table.add_row(f"error/{split}", _fmt(getattr(d.errors, split), metric), _fmt_ci(iv.get(split), metric),
                      f"{n:,}" if n else "", *ref, "not measured" if getattr(d.errors, split) is None else note)
    table.add_section()
    for gap in d.gaps:
        hi, lo = ALL_GAP_TERMS[gap.name]
        if gap.name == "avoidable_bias" and not d.human_known:
            flag = Text("unknown", style="dim")
            flag.append("  (no baseline: at most the training error)", style="dim")
            table.add_row(f"gap/{gap.name}", "≤ " + _fmt(gap.value, metric), _fmt_ci(gap.interval, metric), "",
                          *extra, flag)
            continue
        if gap.problem:
            flag = Text("problem", style="bold red")
        elif round(gap.value, 12) >= d.tolerance:
            flag = Text("uncertain", style="bold yellow")  # the estimate reaches the tolerance, the interval not
        else:
            flag = Text("ok", style="green")
        flag.append(f"  ({hi} - {lo})", style="dim")
        table.add_row(f"gap/{gap.name}", _fmt(gap.value, metric), _fmt_ci(gap.interval, metric), "", *extra, flag)
    out.print(table)
    if baseline.get("source") == "estimated":
        alone = "; ".join(f"{name} alone [{_fmt(lo, metric)}, {_fmt(hi, metric)}]"
                          for name, (lo, hi) in (baseline.get("brackets") or {}).items())
        out.print(Text(f"estimated Bayes error: [{_fmt(baseline['lower'], metric)}, {_fmt(baseline['upper'], metric)}]"
                       f" ({baseline['method']})" + (f"; {alone}" if alone else ""), style="dim"), soft_wrap=True)
    if reference.get("dev") is not None:
        name = baseline.get("reference_model", "the reference model")
        out.print(Text(f"{name} (scikit-learn defaults) reaches {_fmt(reference['dev'], metric)} on dev; "
                       f"this network {_fmt(d.errors.dev, metric)}"), soft_wrap=True)

    if report.labels:  # wrong labels (diagnosis/labels.py)
        from dlexp.diagnosis.labels import lines as label_lines

        for line in label_lines(report.labels, human=d.errors.human if d.human_known else None,
                                tolerance=d.tolerance):
            out.print(Text(line), soft_wrap=True)
    lines = Text()
    style = {"within_tolerance": "bold green", "inconclusive": "bold yellow"}.get(d.verdict, "bold red")
    lines.append("verdict: ", style="bold")
    lines.append(d.verdict, style=style)
    if d.problems:
        lines.append(f"\nproblems, largest first: {', '.join(d.problems)}")
    rule = "a gap counts when its 95% interval's lower end reaches it" if any(
        g.interval is not None for g in d.gaps) else "no split sizes, so no intervals: estimates only"
    lines.append(f"\ntolerance: {_fmt(d.tolerance, metric)} ({rule})", style="dim")
    for note in d.notes:
        lines.append(f"\nnote: {note}", style="yellow")
    if report.start_line():
        lines.append(f"\n{report.start_line()}", style="cyan")
    for check in report.checks:
        lines.append(f"\ndata check: {check}", style="yellow")
    out.print(Panel(lines, title="dlexp.verdict", expand=False))

    if report.actions:
        out.print(Text("next steps", style="bold"))
        for i, a in enumerate(report.actions, 1):
            out.print(Text.assemble((f"{i:>2}. ", "bold"), (f"[{a.problem}] ", "cyan"), a.action,
                                    (f" — {a.why}", "dim")), soft_wrap=True)
            if a.command:
                out.print(Text("     $ " + a.command, style="green"), soft_wrap=True)
    elif d.verdict == "within_tolerance" and not d.human_known:
        out.print("Variance, data mismatch and dev overfitting are within tolerance; with no baseline, avoidable "
                  "bias is unknown (a bigger model may still lower the training error).")
    elif d.verdict == "within_tolerance":
        out.print("Every gap is within tolerance: this model is as good as this data and baseline allow.")
    if report.seeds:
        seeds = report.seeds
        per = ", ".join(f"seed {s}: dev {e['dev']:.2%} ({v})"
                        for s, e, v in zip(seeds["seeds"], seeds["errors"], seeds.get("verdicts", [""] * 99)))
        out.print(Text(f"seed runs — {per}; seed-to-seed sd of dev error {seeds['spread']['dev']:.2%}",
                       style="dim"), soft_wrap=True)
    if report.analysis:
        error_analysis(report.analysis, out=out)


def error_analysis(summary: dict, *, out: Console | None = None, max_classes: int = 12) -> None:
    """Per-class errors on each split, the classes rising most from train-dev to dev, the worst mistakes."""
    out = out or console()
    per = summary.get("per_class") or {}
    classes = summary.get("classes") or []
    if per and len(classes) <= max_classes:
        table = Table(title="error analysis · error by true class", box=box.SIMPLE, title_justify="left")
        table.add_column("class", justify="right")
        for split in SPLITS:
            if split in per:
                table.add_column(f"error/{split}", justify="right")
        table.add_column("n dev", justify="right")
        rising = {r["class"] for r in summary.get("rising", [])[:1] if r["rise"] > 0}
        for c in classes:
            cells = [_fmt(per[s][c], "error_rate") for s in SPLITS if s in per]
            n_dev = (summary.get("class_sizes") or {}).get("dev", [None] * len(classes))[c]
            table.add_row(str(c), *cells, f"{n_dev:,}" if n_dev is not None else "",
                          style="bold" if c in rising else None)
        out.print(table)
    rising = [r for r in summary.get("rising", []) if r["rise"] > 0]
    if rising:
        text = ", ".join(f"class {r['class']} ({r['train_dev']:.1%} -> {r['dev']:.1%}, {r['rise']:+.1%})"
                         for r in rising)
        out.print(Text.assemble(("rises most from train-dev to dev: ", "bold"), text,
                                (" — where the mismatch lives", "dim")), soft_wrap=True)
    if summary.get("n_dev_mistakes"):
        worst = summary.get("worst_dev") or []
        sure = ""
        if worst:
            w = worst[0]
            sure = f"; the surest: dev row {w['row']}, true {w['true']}, predicted {w['predicted']} at {w['confidence']:.2f}"
        out.print(Text(f"{summary['n_dev_mistakes']:,} dev mistakes{sure}; the worst are in "
                       f"{summary.get('worst_dev_csv', 'the run artifacts')} (plots/confusion_dev.png: the dev "
                       "confusion matrix)", style="dim"), soft_wrap=True)


def compare(comparison, *, out: Console | None = None) -> None:
    """`dlexp compare`: each split's and gap's A, B, change and 95% interval, the method, the verdicts."""
    out = out or console()
    c, metric = comparison, comparison.metric
    head = f"dlexp compare · B {c.b} against A {c.a}"
    table = Table(title=head, box=box.SIMPLE_HEAVY, title_justify="left")
    for col, justify in (("measure", "left"), ("A", "right"), ("B", "right"), ("B - A", "right"),
                         ("95% interval", "center"), ("p", "right"), ("", "left")):
        table.add_column(col, justify=justify)
    methods = {"mcnemar_exact": "paired: McNemar exact, Newcombe paired interval",
               "paired_bootstrap": "paired bootstrap over examples",
               "two_proportion_z": "independent: score test, Newcombe interval",
               "bootstrap": "independent bootstrap"}
    for split, s in c.splits.items():
        how = methods.get(s.test) or f"{s.method}: {s.interval_method or 'no interval'}"
        if s.reason and s.method == "independent":
            how += f" ({s.reason})"
        flag = _change_text(s.diff, s.interval if s.significant else None, s.interval is not None)
        flag.append(f"  {how}", style="dim")
        table.add_row(f"error/{split}", _fmt(s.a, metric), _fmt(s.b, metric), _signed(s.diff, metric),
                      _fmt_ci(s.interval, metric), "" if s.p_value is None else f"{s.p_value:.3g}", flag)
    table.add_section()
    for name, g in c.gaps.items():
        table.add_row(f"gap/{name}", _fmt(g.a, metric), _fmt(g.b, metric), _signed(g.diff, metric),
                      _fmt_ci(g.interval, metric), "", _change_text(g.diff, g.interval if g.change in (
                          "lowered", "raised") else None, g.interval is not None))
    out.print(table)
    lines = Text()
    lines.append("verdict: ", style="bold")
    lines.append(f"A {c.verdicts[0]} -> B {c.verdicts[1]}")
    lines.append(f"\n{c.summary}")
    for note in c.notes:
        lines.append(f"\nnote: {note}", style="yellow")
    out.print(Panel(lines, title="dlexp compare", width=min(out.width, 110)))  # the summary wraps, not the table


def _signed(value, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:+.2%}" if metric == "error_rate" else f"{value:+.4g}"


def _change_text(diff, significant_interval, has_interval: bool) -> Text:
    """lower / higher (significant) in colour, or 'within noise'."""
    if diff is None or not has_interval:
        return Text("no interval", style="yellow")
    if significant_interval is None:
        return Text("within noise", style="dim")
    return Text("lower", style="bold green") if diff < 0 else Text("higher", style="bold red")


def runs(rows: list[dict], *, out: Console | None = None) -> None:
    out = out or console()
    if not rows:
        out.print("no runs yet: `dlexp train` makes one")
        return
    table = Table(box=box.SIMPLE_HEAVY)
    lineage = any(r.get("follows") for r in rows)  # the column appears once a run follows another (`dlexp next`)
    columns = ("run_id", "status", "data", "model", "train", "train_dev", "dev", "test", "verdict")
    for col in columns + (("follows",) if lineage else ()):
        table.add_column(col, justify="right" if col in ("train", "train_dev", "dev", "test") else "left",
                         no_wrap=col == "run_id")
    for r in rows:
        status_style = {"FINISHED": "green", "FAILED": "red", "KILLED": "yellow"}.get(r["status"], "")
        table.add_row(r["run_id"], Text(r["status"], style=status_style), r["data"] or "-", r["model"] or "-",
                      *(_fmt(r["errors"][k], r.get("metric") or "error_rate") for k in SPLITS), r["verdict"] or "-",
                      *((_follows(r),) if lineage else ()))
    out.print(table)


def _follows(row: dict) -> str:
    """`3a6eb593 · bigger model`: the run this one follows (its id's first 8 characters) and the step taken."""
    if not row.get("follows"):
        return ""
    from dlexp.diagnosis.actions import label

    return row["follows"][:8] + (f" · {label(row['action'])}" if row.get("action") else "")


def job_line(num: int, overrides: list[str], report: Report) -> str:
    """One plain line for a job that runs where each line is prefixed (a Ray worker); its run has the rest."""
    e = report.diagnosis.errors
    return (f"dlexp: job #{num} {' '.join(overrides) or '(no overrides)'}: run {report.run_id} · "
            f"verdict {report.diagnosis.verdict} · dev {_fmt(e.dev, report.metric)} · train {_fmt(e.train, report.metric)}")


def jobs(results, *, out: Console | None = None) -> None:
    """The jobs of a sweep, one row each: overrides, run, the four errors, the verdict or the error."""
    out = out or console()
    table = Table(box=box.SIMPLE_HEAVY, title=f"{len(results)} jobs", title_justify="left")
    for col in ("job", "overrides", "run_id", *SPLITS, "verdict"):
        table.add_column(col, justify="right" if col in SPLITS or col == "job" else "left", no_wrap=col == "run_id")
    for r in results:
        if r.report is not None:
            e, metric = r.report.diagnosis.errors, r.report.metric
            row = [*(_fmt(getattr(e, k), metric) for k in SPLITS), r.report.diagnosis.verdict]
        else:
            row = ["-"] * len(SPLITS) + [Text(f"failed: {r.error}", style="red")]
        table.add_row(f"#{r.num}", " ".join(r.overrides) or "-", r.run_id or "-", *row)
    out.print(table)
    out.print("each run holds its whole diagnosis: `dlexp diagnose RUN_ID`, `dlexp report RUN_ID`")


def curve(result: dict, *, out: Console | None = None) -> None:
    """A learning curve: one row per size with its errors and intervals, then the answer and why."""
    out = out or console()
    axis = result["axis"]
    table = Table(title=f"dlexp curve over {axis} · parent run {result['run_id']}", box=box.SIMPLE_HEAVY,
                  title_justify="left")
    widths = ", ".join(result.get("width_keys") or ["model.hidden"])
    table.add_column("n_train" if axis == "data" else widths, justify="right")
    for split in ("train", "train_dev", "dev"):
        table.add_column(f"error/{split}", justify="right")
    table.add_column("dev 95% interval", justify="center")
    table.add_column("verdict")
    for p in result["points"]:
        label = f"{p['n_train']:,}" if axis == "data" else " ".join(o.split("=", 1)[1] for o in p["override"].split())
        table.add_row(label, *(_fmt(p["errors"][s], "error_rate") for s in ("train", "train_dev", "dev")),
                      _fmt_ci(p["intervals"].get("dev"), "error_rate"), p["verdict"])
    out.print(table)
    key = "more_data_helps" if axis == "data" else "bigger_model_helps"
    helps = result.get(key)
    lines = Text()
    lines.append(f"{key}: ", style="bold")
    lines.append({True: "yes", False: "no", None: "cannot tell"}[helps],
                 style={True: "bold green", False: "bold red", None: "bold yellow"}[helps])
    ex = result.get("extrapolation")
    if ex:
        unit = "examples" if axis == "data" else "width units" if result.get("width_keys", ["model.hidden"]) != [
            "model.hidden"] else "hidden units"
        lines.append(f"\ndev error extrapolated: {ex['2x']:.2%}{_band(ex.get('2x_interval'))} at 2x "
                     f"({ex['at_2x_size']:,.0f} {unit}), {ex['10x']:.2%}{_band(ex.get('10x_interval'))} at 10x "
                     f"({ex['at_10x_size']:,.0f})")
    lines.append(f"\nwhy: {result['why']}", style="dim")
    lines.append(f"\nhuman level: {result['human']:.2%}", style="dim")
    out.print(Panel(lines, title=f"dlexp curve · {axis}", expand=False))


def _band(ci) -> str:
    return f" [{ci[0]:.2%}, {ci[1]:.2%}]" if ci else ""


def recipe(doc: dict, *, out: Console | None = None) -> None:
    """A recipe: the trail (one row per trained candidate), why it stopped, the final model with its test
    error (read once), and what is left to try."""
    out = out or console()
    metric = doc.get("metric", "error_rate")
    table = Table(title=f"dlexp recipe · parent run {doc['run_id']}", box=box.SIMPLE_HEAVY, title_justify="left")
    for col, justify, width in (("round", "right", None), ("problem", "left", None), ("action", "left", 36),
                                ("command", "left", 44), ("dev error", "right", None),
                                ("change [95% interval]", "center", None), ("accepted", "left", None)):
        table.add_column(col, justify=justify, overflow="fold", max_width=width)
    start = doc.get("start")
    base = shlex.split(start.get("command") or "")[2:] if start else []
    if start:
        table.add_row("0", start["verdict"], "start", Text(start.get("command") or "", style="green"),
                      _fmt(start["errors"]["dev"], metric), "", Text("incumbent", style="dim"))
    for r in doc["trail"]:
        if r.get("diff") is None:
            change = Text(r.get("reason") or "", style="yellow")
        else:
            sign = "+" if r["diff"] >= 0 else ""
            change = f"{sign}{_fmt(r['diff'], metric)} {_fmt_ci(r.get('interval'), metric)}"
        raised = ", ".join(r.get("raised") or [])
        mark = Text("yes" + (f" (raises {raised})" if raised else ""), style="bold green") if r["accepted"] else Text(
            "no" + (f": {r['outcome']}" if r.get("outcome") else ""), style="red")
        # the start's command, then what each candidate changes (its whole command is in the trail files)
        changed = [a for a in shlex.split(r["command"])[2:] if a not in base and a != "-m"]
        command = "… " + " ".join(shlex.quote(a) for a in changed) if base else r["command"]
        table.add_row(str(r["round"]), r["problem"], r["action"], Text(command, style="green"),
                      _fmt(r.get("dev_error"), metric), change, mark)
    out.print(table)

    lines = Text()
    lines.append("stopped because: ", style="bold")
    lines.append(doc.get("stopped_because") or "-", style="bold yellow")
    why = {"within_tolerance": "every gap is within tolerance",
           "inconclusive": "the largest gap is not settled by these split sizes: measure more first",
           "nothing_helps": "no action left for this model's problems lowered the dev error significantly",
           "budget": f"{doc['budget']['used']} of {doc['budget']['limit']} training runs used (--budget)",
           "interrupted": "stopped by a signal; continue with dlexp recipe --from " + str(doc["run_id"])}
    if doc.get("stopped_because") in why:
        lines.append(f" ({why[doc['stopped_because']]})", style="dim")
    final = doc.get("final")
    if final:
        e, gaps, iv = final["errors"], final["gaps"], final.get("intervals") or {}
        lines.append(f"\nfinal run: {final['run_id']} ({doc.get('accepted', 0)} change"
                     f"{'s' if doc.get('accepted', 0) != 1 else ''} accepted)")
        lines.append("\nverdict: ", style="bold")
        lines.append(final["verdict"], style="bold green" if final["verdict"] == "within_tolerance" else "bold red")
        lines.append("\nerrors: " + ", ".join(f"{k} {_fmt(e[k], metric)}" for k in ("human", *SPLITS)))
        if start:
            moved = [f"{g} {_fmt(start_gap, metric)} -> {_fmt(gaps[g], metric)}"
                     for g, start_gap in (start.get("gaps") or {}).items() if g in gaps]
            if moved:
                lines.append("\ngaps, start -> final: " + ", ".join(moved))
        ci = iv.get("dev_overfitting")
        lines.append(f"\ntest error {_fmt(e['test'], metric)}, dev_overfitting {_fmt(gaps['dev_overfitting'], metric)} "
                     f"{_fmt_ci(ci, metric)}", style="bold")
        lines.append(f"\nnote: {doc['test_note']}", style="yellow")
    out.print(Panel(lines, title="dlexp recipe", expand=False))
    left = doc.get("left_to_try") or []
    if left:
        out.print(Text("left to try", style="bold"))
        for i, a in enumerate(left, 1):
            out.print(Text.assemble((f"{i:>2}. ", "bold"), (f"[{a['problem']}] ", "cyan"), a["action"]), soft_wrap=True)
            if a.get("command"):
                out.print(Text("     $ " + a["command"], style="green"), soft_wrap=True)
