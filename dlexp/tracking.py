"""Everything dlexp keeps in MLflow: the only module that imports mlflow.

Two roles:
- reading and writing runs in-process (`dlexp runs`, `dlexp diagnose`);
- `python -m dlexp.tracking`: the tracking process that `dlexp train` starts first. It imports MLflow and
  opens the store while the training process imports Lightning and trains, then logs what it is sent
  as JSON lines on stdin. If the training process dies before saying `finish`, the run ends FAILED.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bars in dlexp's output
import mlflow  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from dlexp.errors import StoreError
from dlexp.store import redact, store_uri

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bars on stderr per download
for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)

ERROR_KEYS = ("human", "train", "train_dev", "dev", "test")
MAX_PARAM = 500  # characters of a param value kept; the whole config is in config.yaml


# ------------------------------------------------------------------------------------------ the store


def client(uri: str | None = None, *, create: bool = False) -> MlflowClient:
    """An MlflowClient on the store; a local store that does not exist yet is created only when `create`."""
    uri = store_uri(uri)
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if not path.exists() and not create:
            raise StoreError(f"no dlexp runs at {path.parent} yet; run `dlexp train` first "
                             "(or set DLEXP_RUNS_DIR to the folder that holds mlflow.db)")
        if path.exists() and path.is_dir():
            raise StoreError(f"{path} is a folder, not an MLflow SQLite store; point DLEXP_RUNS_DIR elsewhere")
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        c = MlflowClient(tracking_uri=uri)
        c.search_experiments(max_results=1)  # opens (and on first use creates) the store
    except MlflowException as exc:
        raise StoreError(f"cannot open the MLflow store {redact(uri)}: {_first_line(exc)}") from None
    except Exception as exc:  # sqlalchemy errors for files that are not databases, unreachable servers, ...
        raise StoreError(f"cannot open the MLflow store {redact(uri)}: {_first_line(exc)}") from None
    return c


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def experiment_id(c: MlflowClient, name: str) -> str:
    """The experiment's id, created once even when several processes ask at the same moment."""
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    kwargs = {}
    if c.tracking_uri.startswith("sqlite:///"):
        kwargs["artifact_location"] = (Path(c.tracking_uri[len("sqlite:///"):]).parent / "artifacts").as_uri()
    try:
        return c.create_experiment(name, **kwargs)
    except MlflowException:
        exp = c.get_experiment_by_name(name)  # another process created it first
        if exp is None:
            raise
        return exp.experiment_id


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """Nested config -> {"data.n_train": "10000", ...}, values cut to MLflow's param length."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = str(value)[:MAX_PARAM]
    return out


# ------------------------------------------------------------------------------- the tracking process


class Session:
    """One run being written: the state of the tracking process."""

    def __init__(self, msg: dict):
        self.client = client(msg.get("uri"), create=True)
        exp = experiment_id(self.client, msg["experiment"])
        tags = dict(msg.get("tags", {}))
        tags.update({"dlexp.host": socket.gethostname(), "dlexp.pid": str(msg.get("pid", ""))})
        if msg.get("run_name"):
            tags["mlflow.runName"] = msg["run_name"]
        self.run = self.client.create_run(exp, tags=tags)
        self.run_id = self.run.info.run_id
        params = [Param(k, v) for k, v in flatten(msg.get("params", {})).items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        for name, text in msg.get("files", {}).items():
            self.client.log_text(self.run_id, text, name)

    def epoch(self, msg: dict) -> None:
        step = int(msg["epoch"])
        metrics = [Metric(f"epoch/{k}", float(v), _now(), step)
                   for k, v in msg["row"].items() if k not in ("epoch", "step") and _finite(v)]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, msg: dict) -> None:
        c, run_id = self.client, self.run_id
        now = _now()
        metrics = [Metric(k, float(v), now, 0) for k, v in msg.get("metrics", {}).items() if _finite(v)]
        tags = [RunTag(k, str(v)) for k, v in msg.get("tags", {}).items()]
        if metrics or tags:
            c.log_batch(run_id, metrics=metrics, tags=tags)
        document = msg.get("document")
        if document is not None:
            c.log_dict(run_id, document, "diagnosis.json")
            with tempfile.TemporaryDirectory() as tmp:
                from dlexp import plots

                for path in plots.draw(document, msg.get("history", []), Path(tmp)):
                    c.log_artifact(run_id, str(path), "plots")
        for local, target in msg.get("artifacts", {}).items():
            if Path(local).is_dir() and any(Path(local).iterdir()):
                c.log_artifacts(run_id, local, target)
        c.set_terminated(run_id, msg.get("status", "FINISHED"))
        for local in msg.get("cleanup", []):
            shutil.rmtree(local, ignore_errors=True)


def _now() -> int:
    import time

    return int(time.time() * 1000)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def serve(stdin=sys.stdin, stdout=sys.stdout) -> None:
    """Read JSON lines: start, epoch..., finish. Reply to start and finish with one JSON line each."""

    def reply(obj):
        stdout.write(json.dumps(obj) + "\n")
        stdout.flush()

    session: Session | None = None
    for line in stdin:
        msg = json.loads(line)
        op = msg.get("op")
        try:
            if op == "start":
                session = Session(msg)
                reply({"run_id": session.run_id, "experiment_id": session.run.info.experiment_id})
                from dlexp import plots  # noqa: F401  (matplotlib loads while the model trains)
            elif session is None:
                continue
            elif op == "epoch":
                session.epoch(msg)
            elif op == "finish":
                session.finish(msg)
                reply({"ok": True})
                return
        except StoreError as exc:
            reply({"error": str(exc)})
            return
        except Exception as exc:
            reply({"error": f"MLflow logging failed: {_first_line(exc)}"})
            if session is None:
                return
    # the training process went away without `finish`: never leave the run RUNNING
    if session is not None:
        try:
            session.client.set_tag(session.run_id, "dlexp.error", "training process ended before finishing")
            session.client.set_terminated(session.run_id, "FAILED")
        except Exception:
            pass


# ------------------------------------------------------------------------------------- reading runs


def _resolve_run(c: MlflowClient, run_id: str | None):
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


def latest_runs(c: MlflowClient, *, limit: int = 20, experiment: str | None = None):
    exps = c.search_experiments()
    ids = [e.experiment_id for e in exps if experiment is None or e.name == experiment]
    if not ids:
        return []
    return list(c.search_runs(ids, max_results=limit, order_by=["attributes.start_time DESC"]))


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
    }


def list_runs(uri: str | None = None, *, limit: int = 20) -> list[dict]:
    return [run_summary(r) for r in latest_runs(client(uri), limit=limit)]


def load_run(uri: str | None = None, run_id: str | None = None) -> dict:
    """What `dlexp diagnose` needs from a run: its errors, sizes, config and overrides."""
    import yaml

    c = client(uri)
    run = _resolve_run(c, run_id)
    rid = run.info.run_id
    errors = {k: run.data.metrics.get(f"error/{k}") for k in ERROR_KEYS}
    if any(v is None for v in errors.values()):
        raise StoreError(f"run {rid} ({run.info.status}) has no diagnosis: it ended before its errors were "
                         "measured; train again, or pick another run from `dlexp runs`")
    try:
        document = json.loads(_load_text(c, rid, "diagnosis.json"))
    except Exception:
        document = {}
    try:
        config = yaml.safe_load(_load_text(c, rid, "config.yaml"))
    except Exception:
        config = None
    overrides = json.loads(run.data.tags.get("dlexp.overrides", "[]"))
    return {"run_id": rid, "status": run.info.status, "errors": errors, "document": document,
            "config": config, "overrides": overrides}


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


def log_file(uri: str | None, run_id: str, path: Path) -> None:
    """Attach a file to an existing (finished) run."""
    try:
        client(uri).log_artifact(run_id, str(path))
    except MlflowException as exc:
        raise StoreError(f"cannot log {path.name} to run {run_id}: {_first_line(exc)}") from None


def _load_text(c: MlflowClient, run_id: str, name: str) -> str:
    root = c.get_run(run_id).info.artifact_uri
    if root.startswith("file://"):  # a local store: read in place, no copy
        from urllib.parse import unquote, urlparse

        return (Path(unquote(urlparse(root).path)) / name).read_text()
    with tempfile.TemporaryDirectory() as tmp:
        path = c.download_artifacts(run_id, name, tmp)
        return Path(path).read_text()


if __name__ == "__main__":
    serve()
