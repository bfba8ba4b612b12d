"""The page of `dlexp report`: one self-contained HTML page for a run, a seed group or a learning curve.

Stdlib only (html, base64): a diagnosis document and the run's PNG plots in, the page's text out, with the
plots embedded as data URIs so it can be mailed as one file. The run is read (and the page attached to it) by
`tracking.report`; nothing here opens the store.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from dlexp.diagnosis import ALL_GAP_TERMS, SPLITS

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:980px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:right}
th{background:#f6f6f6}td.l,th.l{text-align:left}.problem{color:#b00;font-weight:600}.uncertain{color:#a60;font-weight:600}
.ok{color:#080}.verdict{font-size:1.3em;font-weight:700;padding:.4em .8em;border-radius:6px;display:inline-block}
.v-bad{background:#fde8e8;color:#900}.v-good{background:#e6f6e6;color:#060}.v-unsure{background:#fff4dc;color:#850}
code{background:#f4f4f4;padding:.1em .35em;border-radius:4px}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.dim{color:#777}
"""


def _pct(v) -> str:
    return "–" if v is None else f"{v:.2%}"


def _ci(ci) -> str:
    return "" if not ci else f"[{ci[0]:.2%}, {ci[1]:.2%}]"


def _value(v, metric: str) -> str:
    return _pct(v) if metric == "error_rate" or v is None else f"{v:.4g}"


def _estimate(baseline: dict, metric: str, dev) -> str:
    """The estimated Bayes error with its method, each model's own bracket and the reference model's dev error."""
    text = (f"Estimated Bayes error: <b>[{_value(baseline.get('lower'), metric)}, "
            f"{_value(baseline.get('upper'), metric)}]</b> "
            f"<span class=\"dim\">({escape(baseline.get('method', ''))})</span>")
    alone = [f"{escape(name)} alone [{_value(lo, metric)}, {_value(hi, metric)}]"
             for name, (lo, hi) in (baseline.get("brackets") or {}).items()]
    if alone:
        text += "; " + "; ".join(alone)
    reference = baseline.get("reference") or {}
    if reference.get("dev") is not None:
        name = baseline.get("reference_model") or "the reference model"
        text += (f". {escape(name[:1].upper() + name[1:])} (scikit-learn defaults) "
                 f"reaches {_value(reference['dev'], metric)} on dev; this network {_value(dev, metric)}")
    return text + "."


def _table(head: list[str], rows: list[list[str]], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def page(doc: dict, *, title: str, images: list[Path], children: list[dict] | None = None) -> str:
    """The HTML text for one diagnosis document (with its optional seeds, analysis and curve parts)."""
    iv = doc.get("intervals") or {}
    tol = doc.get("tolerance", 0.01)
    parts = [f"<h1>{escape(title)}</h1>",
             f'<p class="dim">run {escape(str(doc.get("run_id")))} · task {escape(str(doc.get("task")))} · '
             f"tolerance {_pct(tol)} (a gap counts when its 95% interval's lower end reaches it)</p>"]
    verdict = doc.get("verdict", "?")
    css = {"within_tolerance": "v-good", "inconclusive": "v-unsure"}.get(verdict, "v-bad")
    parts.append(f'<p><span class="verdict {css}">verdict: {escape(verdict)}</span></p>')
    if doc.get("problems"):
        parts.append(f"<p>problems, largest first: <b>{escape(', '.join(doc['problems']))}</b></p>")
    for note in doc.get("notes") or []:
        parts.append(f'<p class="uncertain">note: {escape(note)}</p>')

    parts.append("<h2>Errors and gaps</h2>")
    sizes = doc.get("sizes") or {}
    baseline = doc.get("baseline") or {}
    what = {"estimated": "ESTIMATED Bayes error: no human level known",
            "none": "no baseline (baseline.human_error=none)"}.get(baseline.get("source"), "baseline")
    rows = [["error/human", _pct(doc["errors"]["human"]), _ci(iv.get("human")) if iv.get("human") and
             iv["human"][0] != iv["human"][1] else "", "", escape(what)]]
    rows += [[f"error/{s}", _pct(doc["errors"][s]), _ci(iv.get(s)), f"{sizes[s]:,}" if sizes.get(s) else "", ""]
             for s in SPLITS]
    problems = set(doc.get("problems") or [])
    for name, (hi, lo) in ALL_GAP_TERMS.items():
        if name not in doc["gaps"]:  # not measured (no train-dev error: one joint gap instead of two)
            continue
        value = doc["gaps"][name]
        state = "problem" if name in problems else ("uncertain" if round(value, 12) >= tol else "ok")
        rows.append([f"gap/{name}", _pct(value), _ci(iv.get(name)), "",
                     f'<span class="{state}">{state}</span> <span class="dim">({hi} − {lo})</span>'])
    parts.append(_table(["measure", "value", "95% interval", "n", ""], rows))
    if baseline.get("source") == "estimated":
        parts.append(f"<p>{_estimate(baseline, doc.get('metric', 'error_rate'), doc['errors'].get('dev'))}</p>")

    if doc.get("actions"):
        parts.append("<h2>Next steps</h2><ol>")
        for a in doc["actions"]:
            cmd = f"<br><code>$ {escape(a['command'])}</code>" if a.get("command") else ""
            parts.append(f"<li><b>[{escape(a['problem'])}]</b> {escape(a['action'])} "
                         f'<span class="dim">— {escape(a["why"])}</span>{cmd}</li>')
        parts.append("</ol>")

    seeds = doc.get("seeds")
    if seeds:
        parts.append(f"<h2>Seed group: {len(seeds['seeds'])} seeds pooled</h2>")
        rows = [[str(s), *(_pct(e[k]) for k in SPLITS), escape(v), f"<code>{escape(r or '')}</code>"]
                for s, e, v, r in zip(seeds["seeds"], seeds["errors"], seeds.get("verdicts", []), seeds["runs"])]
        rows.append(["sd", *(_pct(seeds["spread"][k]) for k in SPLITS), "", ""])
        parts.append(_table(["seed", *(f"error/{k}" for k in SPLITS), "verdict", "run"], rows))

    curve = doc.get("curve")
    if curve:
        axis = curve["axis"]
        key = "more_data_helps" if axis == "data" else "bigger_model_helps"
        parts.append(f"<h2>Learning curve over {escape(axis)}</h2>")
        rows = [[escape(p["override"]), *(_pct(p["errors"][k]) for k in ("train", "train_dev", "dev")),
                 _ci(p["intervals"].get("dev")), escape(p["verdict"])] for p in curve["points"]]
        parts.append(_table(["point", "train", "train-dev", "dev", "dev 95% interval", "verdict"], rows))
        answer = {True: "yes", False: "no", None: "cannot tell"}[curve.get(key)]
        ex = curve.get("extrapolation")
        extra = (f" Extrapolated dev error: {_pct(ex['2x'])} {_ci(ex.get('2x_interval'))} at 2x, "
                 f"{_pct(ex['10x'])} {_ci(ex.get('10x_interval'))} at 10x." if ex else "")
        parts.append(f"<p><b>{key}: {answer}</b> — {escape(curve['why'])}.{extra}</p>")

    analysis = doc.get("analysis")
    if analysis:
        parts.append("<h2>Error analysis</h2>")
        per = analysis.get("per_class") or {}
        splits = [s for s in SPLITS if s in per]
        rows = [[str(c), *(_pct(per[s][c]) for s in splits)] for c in analysis.get("classes", [])]
        parts.append(_table(["class", *(f"error/{s}" for s in splits)], rows))
        rising = [r for r in analysis.get("rising", []) if r["rise"] > 0]
        if rising:
            parts.append("<p>Rises most from train-dev to dev (where the mismatch lives): " + ", ".join(
                f"class {r['class']} ({_pct(r['train_dev'])} → {_pct(r['dev'])})" for r in rising) + "</p>")
        worst = analysis.get("worst_dev") or []
        if worst:
            parts.append(f"<p>{analysis.get('n_dev_mistakes', 0):,} dev mistakes; the most confident ones "
                         f"(all in <code>{escape(analysis.get('worst_dev_csv', ''))}</code>):</p>")
            parts.append(_table(["dev row", "true", "predicted", "confidence"],
                                [[str(w["row"]), str(w["true"]), str(w["predicted"]), f"{w['confidence']:.2f}"]
                                 for w in worst]))

    if children:
        parts.append("<h2>Child runs</h2>")
        parts.append(_table(["run", "status", *SPLITS, "verdict"],
                            [[f"<code>{escape(c['run_id'])}</code>", escape(c["status"]),
                              *(_pct(c["errors"].get(k)) for k in SPLITS), escape(c["verdict"] or "–")]
                             for c in children]))

    if images:
        parts.append("<h2>Plots</h2>")
        for path in images:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(f'<figure><img alt="{escape(path.stem)}" src="data:image/png;base64,{data}">'
                         f'<figcaption class="dim">{escape(path.name)}</figcaption></figure>')
    body = "\n".join(parts)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")

