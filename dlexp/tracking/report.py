"""`dlexp report`: a stored run read back, its page written (`render.html`) and attached to the run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from dlexp.errors import StoreError
from dlexp.render import html
from dlexp.tracking import runs as tracking_runs


def write(uri: str | None, run_id: str | None, out: Path | None = None, *, log: bool = True) -> Path:
    """Write the page for a run (latest when None) and attach it to the run as report.html."""
    run = tracking_runs.load_run(uri, run_id)
    rid, doc, config = run["run_id"], run["document"], run["config"] or {}
    if not doc:
        raise StoreError(f"run {rid} has no diagnosis.json to report on")
    data, model = (config.get("data") or {}).get("name"), (config.get("model") or {}).get("name")
    kind = "seed group" if doc.get("seeds") else ("learning curve" if doc.get("curve") else "run")
    title = f"dlexp {kind}: {model} on {data}" if data and model else f"dlexp {kind}"
    with tempfile.TemporaryDirectory() as tmp:
        images = [p for p in tracking_runs.run_files(uri, rid, "plots", Path(tmp)) if p.suffix == ".png"]
        children = tracking_runs.child_runs(uri, rid) if kind != "run" else []
        text = html.page(doc, title=title, images=images, children=children)
    out = Path(out) if out else Path(f"dlexp-report-{rid[:8]}.html")
    out.write_text(text)
    if log:
        with tempfile.TemporaryDirectory() as tmp:
            named = Path(tmp) / "report.html"
            named.write_text(text)
            tracking_runs.log_file(uri, rid, named)
    return out
