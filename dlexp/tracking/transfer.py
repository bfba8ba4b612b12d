"""Runs to start from: fetch a finished run's weights and tokenizer (model.init_from), and find the runs in
the store that a run could start from (the diagnosis's "start from a pretrained run")."""

from __future__ import annotations

import json
from pathlib import Path

from dlexp.errors import StoreError

# model keys that do not change the shapes of the weights
_FREE_MODEL_KEYS = {"init_from", "freeze", "dropout"}


def source(uri: str | None, run_id: str, dest: Path) -> dict:
    """Download what `model.init_from=RUN_ID` needs into `dest`: the checkpoint (best, else last), and the
    tokenizer and preprocessing account when the run kept them.

    Returns {run_id, checkpoint, tokenizer (path or None), task, classes, data, model, fingerprint}.
    """
    from dlexp.tracking.client import client
    from dlexp.tracking.runs import resolve_run

    c = client(uri)
    run = resolve_run(c, run_id)
    rid, status = run.info.run_id, run.info.status
    if status != "FINISHED":
        raise StoreError(f"model.init_from={run_id}: that run is {status}, not finished; start from a finished "
                         "run (`dlexp runs` lists them)")
    try:
        names = {Path(f.path).name for f in c.list_artifacts(rid, "checkpoints")}
    except Exception:
        names = set()
    name = next((n for n in ("best.ckpt", "last.ckpt") if n in names), None)
    if name is None:
        raise StoreError(f"model.init_from={run_id}: the run kept no checkpoint to start from")
    dest.mkdir(parents=True, exist_ok=True)
    checkpoint = c.download_artifacts(rid, f"checkpoints/{name}", str(dest))
    tokenizer, description = None, {}
    try:
        kept = {Path(f.path).name for f in c.list_artifacts(rid, "preprocessing")}
    except Exception:
        kept = set()
    if "tokenizer.json" in kept:
        tokenizer = c.download_artifacts(rid, "preprocessing/tokenizer.json", str(dest))
    if "preprocessing.json" in kept:
        try:
            description = json.loads(Path(c.download_artifacts(rid, "preprocessing/preprocessing.json",
                                                               str(dest))).read_text())
        except (OSError, ValueError):
            description = {}
    p, t = run.data.params, run.data.tags
    return {"run_id": rid, "checkpoint": checkpoint, "tokenizer": tokenizer,
            "task": t.get("dlexp.task", "classification"), "classes": description.get("classes"),
            "fingerprint": description.get("tokenizer_fingerprint"),
            "data": p.get("data.name"), "model": p.get("model.name")}


def searches(config: dict) -> bool:
    """Whether a run with this config looks for runs to start from: generated sources (synthetic, sequence)
    and digits do not, since more of the same data is their remedy."""
    return bool((config.get("model") or {}).get("name")) and \
        (config.get("data") or {}).get("name") in ("text", "images", "table", "sql", "npz")


def compatible_runs(uri: str | None, config: dict, *, exclude: str | None = None, limit: int = 200) -> list[dict]:
    """Finished runs whose weights fit this config's network: the same model family and shapes, the same
    kind of input (text runs bring their tokenizer; images of the same size and colour; other sources the
    same data source), trained on other data. Language-model runs first, then the newest.
    """
    if not searches(config):
        return []
    from dlexp.tracking.client import client
    from dlexp.tracking.store import flatten

    model, data = config.get("model") or {}, config.get("data") or {}
    c = client(uri)
    experiments = [e.experiment_id for e in c.search_experiments()]
    if not experiments:
        return []
    runs = c.search_runs(experiments, filter_string=f"params.`model.name` = '{model['name']}' and "
                         "attributes.status = 'FINISHED'", max_results=limit, order_by=["attributes.start_time DESC"])
    shape_keys = {f"model.{k}": str(v) for k, v in flatten(model).items() if k not in _FREE_MODEL_KEYS}
    input_keys = ("data.name", "data.image_size", "data.color") if data["name"] == "images" else ("data.name",)
    ours = {k: str(v) for k, v in flatten({"data": data}).items()}
    found = []
    for r in runs:
        p = r.data.params
        if r.info.run_id == exclude or any(p.get(k) != v for k, v in shape_keys.items()):
            continue
        if any(p.get(k) != ours.get(k) for k in input_keys if k in ours or k in p):
            continue
        if all(p.get(k) == ours.get(k) for k in ("data.path", "data.query", "data.task")):
            continue  # the same set (file or query, same task): nothing new to bring
        found.append({"run_id": r.info.run_id, "data": p.get("data.name"), "task": r.data.tags.get("dlexp.task"),
                      "path": p.get("data.path")})
    found.sort(key=lambda f: f["task"] != "lm")  # stable: newest first within each kind
    return found[:3]
