"""Reading runs back from MLflow: `dlexp runs`, `dlexp diagnose RUN`, `dlexp report`, `--resume`."""

from __future__ import annotations

import json
import socket
import tempfile
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dlexp.diagnosis.splits import JOINT_GAP
from dlexp.errors import StoreError, first_line
from dlexp.tracking.client import DESCRIPTION, ERROR_KEYS, client
from dlexp.tracking.store import redact, scrub

FOREIGN_TAG = "dlexp.metrics_from"  # on another tool's run that dlexp diagnosed: JSON {split: the run's metric}


# ------------------------------------------------------------------------------------- reading runs


def resolve_run(c: MlflowClient, run_id: str | None):
    """The run `run_id` names; the latest run (its group or curve when it is a point of one) when None."""
    if run_id is None:
        runs = latest_runs(c, limit=1)
        if not runs:
            raise StoreError("the store has no runs yet; run `dlexp train` first")
        parent = runs[0].data.tags.get("mlflow.parentRunId")
        if parent:  # the latest run is a point of a seed group or a curve: the group is what was run
            try:
                return c.get_run(parent)
            except MlflowException:
                pass
        return runs[0]
    try:
        return c.get_run(run_id)
    except MlflowException:
        raise StoreError(f"no run with id '{run_id}' in {redact(c.tracking_uri)}; "
                         "`dlexp runs` lists the run ids") from None


def find_run(uri: str | None, run_id: str | None):
    """The client on the store and the run `run_id` (the latest run when None), a stale one settled FAILED."""
    c = client(uri)
    return c, settle(c, resolve_run(c, run_id))


def latest_runs(c: MlflowClient, *, limit: int = 20, experiment: str | None = None):
    exps = c.search_experiments()
    ids = [e.experiment_id for e in exps if experiment is None or e.name == experiment]
    if not ids:
        return []
    return list(c.search_runs(ids, max_results=limit, order_by=["attributes.start_time DESC"]))


def stale(run) -> bool:
    """A run the store calls RUNNING whose training process is gone (kill -9, out of memory, a reboot).

    Only a process on this host can be checked; a run written from another machine is taken at its word.
    """
    if run.info.status != "RUNNING":
        return False
    from dlexp.training.signals import process_alive

    t = run.data.tags
    pid = t.get("dlexp.pid", "")
    if t.get("dlexp.host") != socket.gethostname() or not pid.isdigit():
        return False
    return not process_alive(int(pid), t.get("dlexp.pid_start") or None)


def settle(c: MlflowClient, run):
    """End a stale run FAILED in the store (so the MLflow UI agrees) and return it as it now stands."""
    if not stale(run):
        return run
    t = run.data.tags
    reason = (f"the training process (pid {t.get('dlexp.pid')} on {t.get('dlexp.host')}) ended without "
              "finishing the run (killed?)")
    try:
        c.set_tag(run.info.run_id, "dlexp.error", reason)
        c.set_terminated(run.info.run_id, "FAILED")
        return c.get_run(run.info.run_id)
    except Exception:  # a read-only store: show it as failed all the same
        run.info._status = "FAILED"
        run.data.tags["dlexp.error"] = reason
        return run


def run_summary(run) -> dict:
    m, p, t = run.data.metrics, run.data.params, run.data.tags
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "data": p.get("data.name"),
        "model": p.get("model.name"),
        "errors": {k: m.get(f"error/{k}") for k in ERROR_KEYS},
        "verdict": t.get("dlexp.verdict"),
        "task": t.get("dlexp.task", "classification"),
        "metric": t.get("dlexp.metric", "error_rate"),
        "follows": t.get("dlexp.follows"),  # the run whose next step this run is (`dlexp next`), and which step
        "action": t.get("dlexp.action"),
    }


def opened(uri: str | None):
    """The store's client, once the runs of commands killed before their run reached it are recorded there
    (journal.py); a store such a run was meant to create is created."""
    from dlexp.tracking import journal
    from dlexp.tracking.store import runs_dir, store_uri

    work = runs_dir() / "work"
    c = client(uri, create=bool(journal.pending(work, store_uri(uri))))
    try:
        journal.recover(c, work)
    except Exception:  # never worth failing the command that reads the store
        pass
    return c


def list_runs(uri: str | None = None, *, limit: int = 20) -> list[dict]:
    c = opened(uri)
    return [run_summary(settle(c, r)) for r in latest_runs(c, limit=limit)]


def load_run(uri: str | None = None, run_id: str | None = None) -> dict:
    """What `dlexp diagnose` needs from a run: its errors, sizes, config and overrides."""
    import yaml

    c = opened(uri)
    run = settle(c, resolve_run(c, run_id))
    rid = run.info.run_id
    errors = {k: run.data.metrics.get(f"error/{k}") for k in ERROR_KEYS}
    no_baseline = run.data.tags.get("dlexp.human_source") == "none"  # baseline.human_error=none: no error/human
    optional = {"human"} if no_baseline else set()
    if f"gap/{JOINT_GAP}" in run.data.metrics:  # judged without a train-dev error (a callback's, another tool's)
        optional.add("train_dev")
    if not any(k.startswith("error/") or k.startswith("dlexp.") for k in (*run.data.metrics, *run.data.tags)):
        names = ", ".join(sorted(run.data.metrics)[:20]) or "none"
        raise StoreError(f"run {rid} was not logged by dlexp: name its metrics, e.g. `dlexp diagnose {rid} "
                         f"--metric train=NAME --metric dev=NAME --metric test=NAME` (its metrics: {names})")
    if any(v is None for k, v in errors.items() if k not in optional):
        status = run.info.status
        if status == "RUNNING":
            raise StoreError(f"run {rid} is still training; diagnose it when it has finished "
                             "(`dlexp runs` shows its status)")
        why = run.data.tags.get("dlexp.error", "it ended before its errors were measured")
        resume = f"`dlexp train --resume {rid}` continues it, " if status in ("KILLED", "FAILED") else ""
        raise StoreError(f"run {rid} ({status}) has no diagnosis: {why}; {resume}"
                         "or pick another run from `dlexp runs`")
    try:
        document = json.loads(load_text(c, rid, "diagnosis.json"))
    except Exception:
        document = {}
    try:
        config = yaml.safe_load(load_text(c, rid, "config.yaml"))
    except Exception:
        config = None
    overrides = json.loads(run.data.tags.get("dlexp.overrides", "[]"))
    return {"run_id": rid, "status": run.info.status, "errors": errors, "document": document,
            "config": config, "overrides": overrides}


def dev_curve(uri: str | None, run_id: str) -> list[float]:
    """The run's dev error at the end of each epoch, in epoch order ([] when it logged none)."""
    history = client(uri).get_metric_history(run_id, "epoch/dev_error")
    return [m.value for m in sorted(history, key=lambda m: (m.step, m.timestamp))]


def pruned(uri: str | None, run_id: str) -> str | None:
    """"3 of 40" when the run was stopped early as clearly losing (prune.against), else None."""
    return client(uri).get_run(run_id).data.tags.get("dlexp.pruned")


def run_files(uri: str | None, run_id: str, folder: str, dest: Path) -> list[Path]:
    """Download a run's artifact folder (e.g. "plots") into `dest`; [] when the run has none."""
    c = client(uri)
    try:
        local = Path(c.download_artifacts(run_id, folder, str(dest)))
    except Exception:
        return []
    return sorted(p for p in local.rglob("*") if p.is_file())


def child_runs(uri: str | None, run_id: str) -> list[dict]:
    """The runs whose mlflow.parentRunId is `run_id` (a seed group's or a curve's points), oldest first."""
    c = client(uri)
    run = c.get_run(run_id)
    found = c.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
                          order_by=["attributes.start_time ASC"], max_results=1000)
    return [run_summary(r) for r in found]


def describe(uri: str | None, run_id: str, *, compared: dict | None = None) -> str:
    """Write a finished run's Description (mlflow.note.content) again from what it logged, with `compared`
    (a comparison document, `dlexp compare --json`) under its lineage; returns the Markdown."""
    from dlexp.render import markdown

    c = client(uri)
    run = c.get_run(run_id)
    t, p = run.data.tags, run.data.params
    try:
        document = json.loads(load_text(c, run_id, "diagnosis.json"))
    except Exception:
        raise StoreError(f"run {run_id} has no diagnosis.json to describe") from None
    text = markdown.description(document, title=markdown.title(p.get("model.name"), p.get("data.name"), document),
                                follows=t.get("dlexp.follows"), action=t.get("dlexp.action"), compared=compared)
    try:
        c.set_tag(run_id, DESCRIPTION, scrub(text))
    except MlflowException as exc:
        raise StoreError(f"cannot write the description of run {run_id}: {first_line(exc, mask=scrub)}") from None
    return text


def experiment_path(uri: str | None, name: str = "dlexp") -> str:
    """Where MLflow's UI shows the experiment's training runs: `#/experiments/ID?workflowType=machine_learning`.

    MLflow 3.17's UI picks its GenAI or "Model training" view from a switch kept in the browser (GenAI unless
    the user changed it) or from this URL parameter, not from the experiment's kind; the link opens the right one.
    """
    try:
        exp = client(uri).get_experiment_by_name(name)
    except Exception:  # the server reports what is wrong with the store; the link then opens the list
        exp = None
    where = f"#/experiments/{exp.experiment_id}" if exp is not None else "#/experiments"
    return f"{where}?workflowType=machine_learning"


def log_file(uri: str | None, run_id: str, path: Path) -> None:
    """Attach a file to an existing (finished) run."""
    try:
        client(uri).log_artifact(run_id, str(path))
    except MlflowException as exc:
        raise StoreError(f"cannot log {path.name} to run {run_id}: {first_line(exc, mask=scrub)}") from None


def resume_info(uri: str | None, run_id: str) -> dict:
    """What `dlexp train --resume RUN_ID` needs: the run's overrides, its folder and where its last checkpoint is
    (None when it stopped before its first epoch ended: it starts again from the beginning)."""
    c = opened(uri)
    run = settle(c, resolve_run(c, run_id))
    t = run.data.tags
    if run.info.status == "RUNNING":
        raise StoreError(f"run {run_id} is still running (pid {t.get('dlexp.pid')} on {t.get('dlexp.host')}); "
                         "stop it first (Ctrl-C or kill -TERM), then resume it")
    from dlexp.tracking.store import runs_dir

    workdir = Path(t["dlexp.workdir"]) if t.get("dlexp.workdir") else runs_dir() / "work" / run.info.run_id
    local = workdir / "checkpoints" / "last.ckpt"
    checkpoint = str(local) if local.is_file() else None
    if checkpoint is None:
        try:
            names = [f.path for f in c.list_artifacts(run.info.run_id, "checkpoints")]
        except Exception:
            names = []
        if "checkpoints/last.ckpt" in names:
            workdir.mkdir(parents=True, exist_ok=True)
            checkpoint = c.download_artifacts(run.info.run_id, "checkpoints/last.ckpt", str(workdir))
        elif "dlexp.overrides" not in t:
            raise StoreError(f"run {run_id} has no checkpoint to resume from (it stopped before its first "
                             "epoch ended); start it again with `dlexp train`")
        # else: a dlexp run stopped before its first epoch ended: it trains again from the start, in the same run
    return {"run_id": run.info.run_id, "status": run.info.status, "workdir": str(workdir),
            "checkpoint": checkpoint, "overrides": json.loads(t.get("dlexp.overrides", "[]")),
            "experiment": c.get_experiment(run.info.experiment_id).name}


def load_text(c: MlflowClient, run_id: str, name: str) -> str:
    """The text of one of a run's artifacts (e.g. diagnosis.json)."""
    root = c.get_run(run_id).info.artifact_uri
    if root.startswith("file://"):  # a local store: read in place, no copy
        from urllib.parse import unquote, urlparse

        return (Path(unquote(urlparse(root).path)) / name).read_text()
    with tempfile.TemporaryDirectory() as tmp:
        path = c.download_artifacts(run_id, name, tmp)
        return Path(path).read_text()
