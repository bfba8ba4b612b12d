"""The MLflow client on dlexp's store, and the tracking process that writes a run.

`python -m dlexp.tracking` (`__main__.py`: signals ignored first, then `serve` here) is the tracking process
that `dlexp train` starts first, in its own session. It imports MLflow and opens the store while the training
process imports Lightning and trains, then logs what it is sent as JSON lines on stdin. If the training process dies before saying `finish`, the run ends FAILED.
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
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bars in dlexp's output
import mlflow  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from dlexp.errors import StoreError
from dlexp.tracking.store import flatten, redact, require_store, scrub, scrub_tree, sqlite_path, store_uri

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bars on stderr per download
for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)

ERROR_KEYS = ("human", "train", "train_dev", "dev", "test")
MAX_PARAM = 500  # characters of a param value kept; the whole config is in config.yaml


# ------------------------------------------------------------------------------------------ the store


def client(uri: str | None = None, *, create: bool = False) -> MlflowClient:
    """An MlflowClient on the store; a local store that does not exist yet is created only when `create`."""
    uri = store_uri(uri) if create else require_store(uri)
    path = sqlite_path(uri)
    if path is not None:
        if path.exists() and path.is_dir():
            raise StoreError(f"{path} is a folder, not an MLflow SQLite store; point DLEXP_RUNS_DIR elsewhere")
        path.parent.mkdir(parents=True, exist_ok=True)
        _check_sqlite_file(path)
    _check_server(uri)
    try:
        with store_lock(uri):  # a fresh store is created (alembic migrations) by one process at a time
            c = MlflowClient(tracking_uri=uri)
            c.search_experiments(max_results=1)  # opens (and on first use creates) the store
    except StoreError:
        raise
    except MlflowException as exc:
        raise StoreError(f"cannot open the MLflow store {redact(uri)}: {_first_line(exc)}") from None
    except Exception as exc:  # sqlalchemy errors for files that are not databases, unreachable servers, ...
        raise StoreError(f"cannot open the MLflow store {redact(uri)}: {_first_line(exc)}") from None
    return c


def _check_server(uri: str) -> None:
    """A tracking server that is down or refuses: one line within seconds, not minutes of MLflow's retries."""
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    where = f"the MLflow tracking server {redact(uri)}"
    try:
        answer = requests.get(uri.rstrip("/") + "/health", timeout=10)
    except requests.Timeout:
        raise StoreError(f"cannot reach {where}: no answer within 10 s; check tracking.uri / --uri") from None
    except requests.RequestException as exc:
        why = "connection refused" if "refused" in str(exc).lower() else _first_line(exc)
        raise StoreError(f"cannot reach {where}: {why}; start it (`mlflow server ...`, see the README) "
                         "or check tracking.uri / --uri") from None
    if answer.status_code not in (401, 403):  # /health is open on a server with authentication: ask the API
        try:
            answer = requests.get(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search",
                                  params={"max_results": 1}, timeout=10, **_credentials())
        except requests.RequestException:
            return  # MLflow's own call says what is wrong
    if answer.status_code in (401, 403):
        raise StoreError(_refused(where, answer, given=bool(_credentials()) or "@" in uri.split("/")[2]))


def _credentials() -> dict:
    """The credentials MLflow's client sends, from the environment, as `requests` keyword arguments (none: a
    password in the URL itself, which requests then sends)."""
    env = os.environ
    if env.get("MLFLOW_TRACKING_TOKEN"):
        return {"headers": {"Authorization": f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"}}
    if env.get("MLFLOW_TRACKING_USERNAME") or env.get("MLFLOW_TRACKING_PASSWORD"):
        return {"auth": (env.get("MLFLOW_TRACKING_USERNAME", ""), env.get("MLFLOW_TRACKING_PASSWORD", ""))}
    return {}


def _refused(where: str, answer, *, given: bool) -> str:
    """The one line for a 401 or 403: no credentials given, credentials refused, or a user without permission."""
    status = f"HTTP {answer.status_code} {answer.reason}"
    if not given:
        return (f"{where} refused dlexp ({status}): it asks for credentials; set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment")
    if answer.status_code == 403:
        return (f"{where} does not let user {os.environ.get('MLFLOW_TRACKING_USERNAME', '(token)')} in ({status}); "
                "ask its admin for permission, or set another user's MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD")
    return (f"{where} refused the credentials given ({status}); check "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)")


def _check_sqlite_file(path: Path) -> None:
    """A file that exists but is not an SQLite database: say so before SQLAlchemy and alembic do, at length."""
    if path.exists() and path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            head = f.read(16)
        if head != b"SQLite format 3\x00":
            raise StoreError(f"{path} is not an SQLite database (an MLflow store); move it away, or set "
                             "DLEXP_RUNS_DIR to the folder that holds your mlflow.db")


@contextmanager
def store_lock(uri: str):
    """An exclusive file lock next to a local SQLite store; nothing for other stores.

    Several `dlexp train` processes opening one fresh store at once would each run MLflow's alembic
    migrations and fail ('table ... already exists', 'duplicate column'); under this lock the first creates
    the tables and the others find them. Creating the experiment is serialised the same way.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    lock_path = sqlite_path(uri).with_suffix(".lock")
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _first_line(exc: BaseException) -> str:
    text = scrub(str(exc)).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# MLflow 3 keeps what an experiment is for in this tag; the kind for training models (the UI's "Model training"
# view, not its GenAI one). The values are the UI's own (ExperimentKind in MLflow's frontend).
EXPERIMENT_KIND = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"
DESCRIPTION = "mlflow.note.content"  # a run's Description in the UI (Markdown)


def experiment_id(c: MlflowClient, name: str) -> str:
    """The experiment's id, created once even when several processes ask at the same moment.

    A dlexp experiment is marked as a model-training experiment; one made before dlexp marked them (and not
    given another kind since) is marked on its next run.
    """
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if EXPERIMENT_KIND not in exp.tags:
            c.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND, TRAINING_KIND)
        return exp.experiment_id
    with store_lock(c.tracking_uri):
        return _create_experiment(c, name)


def _create_experiment(c: MlflowClient, name: str) -> str:
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    kwargs = {}
    if c.tracking_uri.startswith("sqlite:///"):
        kwargs["artifact_location"] = (sqlite_path(c.tracking_uri).parent / "artifacts").as_uri()
    try:
        return c.create_experiment(name, tags={EXPERIMENT_KIND: TRAINING_KIND}, **kwargs)
    except MlflowException:
        exp = c.get_experiment_by_name(name)  # another process created it first
        if exp is None:
            raise
        return exp.experiment_id


# ------------------------------------------------------------------------------- the tracking process


class _Retrying:
    """An MlflowClient whose calls are retried when SQLite stays locked past its own busy timeout.

    MLflow waits up to 20 s for SQLite's write lock; with many writers on a slow disk that can still run out,
    and a metric must not be dropped for it.
    """

    def __init__(self, c: MlflowClient, attempts: int = 6):
        self._c, self._attempts = c, attempts

    def __getattr__(self, name):
        attr = getattr(self._c, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            import time

            for attempt in range(self._attempts):
                try:
                    return attr(*args, **kwargs)
                except Exception as exc:
                    if "database is locked" not in str(exc) or attempt == self._attempts - 1:
                        raise
                    time.sleep(0.25 * 2 ** attempt)

        return call


class Session:
    """One run being written: the state of the tracking process."""

    def __init__(self, msg: dict):
        self.uri = msg.get("uri")
        self.client = _Retrying(client(self.uri, create=True))
        # no credential is stored: every tag, param and file passes through scrub
        tags = {k: scrub(str(v)) for k, v in msg.get("tags", {}).items()}
        tags.update({"dlexp.host": socket.gethostname(), "dlexp.pid": str(msg.get("pid", ""))})
        params = {k: scrub(str(v))[:MAX_PARAM] for k, v in flatten(msg.get("params", {})).items()}
        self.names = (params.get("model.name"), params.get("data.name"))  # for the Description's title
        self.resumed = bool(msg.get("resume_run_id"))
        # a run another writer holds open (the MLFlowLogger of the user's own Trainer, see dlexp.lightning): dlexp
        # adds its records and leaves the run's status to that writer
        self.attached = bool(msg.get("attach_run_id"))
        if self.attached:
            self.run = self.client.get_run(msg["attach_run_id"])
            self.run_id = self.run.info.run_id
            params = {k: v for k, v in params.items() if k not in self.run.data.params}
            self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        elif self.resumed:
            # attach to the run being resumed: same id, RUNNING again; params are immutable in MLflow, so
            # the ones an override changed are kept as they were and the change is recorded as a tag
            self.run = self.client.get_run(msg["resume_run_id"])
            self.run_id = self.run.info.run_id
            old = self.run.data.params
            changed = {k: v for k, v in params.items() if k in old and old[k] != v}
            params = {k: v for k, v in params.items() if k not in old}
            resumed = int(self.run.data.tags.get("dlexp.resumed", "0")) + 1
            tags.update({"dlexp.resumed": str(resumed)})
            if changed:
                tags[f"dlexp.resume{resumed}.changed"] = json.dumps(changed)[:5000]
            # the new pid first: a `dlexp runs` in between must not take the old, dead one for the writer
            self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
            if "dlexp.error" in self.run.data.tags:
                self.client.delete_tag(self.run_id, "dlexp.error")
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            exp = experiment_id(self.client._c, msg["experiment"])
            if msg.get("run_name"):
                tags["mlflow.runName"] = scrub(msg["run_name"])
            self.run = self.client.create_run(exp, tags=tags)
            self.run_id = self.run.info.run_id
        params = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        for name, text in msg.get("files", {}).items():
            self.client.log_text(self.run_id, scrub(text), name)

    def _whole_history(self, recent: list[dict]) -> list[dict]:
        """A resumed run's curves from the store, so its plot starts at epoch 1, not at the resume."""
        rows: dict[int, dict] = {}
        for name in ("train_loss", "dev_error"):
            for m in self.client.get_metric_history(self.run_id, f"epoch/{name}"):
                rows.setdefault(m.step, {"epoch": m.step, "train_loss": math.nan})[name] = m.value
        for row in recent:
            rows.setdefault(int(row["epoch"]), {}).update(row)
        return [rows[k] for k in sorted(rows)]

    def description(self, document: dict, tags: dict) -> str:
        """The run's diagnosis as Markdown, headed by the run and step it follows (`dlexp next`)."""
        from dlexp.render import markdown

        t = {**self.run.data.tags, **tags}
        return markdown.description(document, title=markdown.title(*self.names, document),
                                    follows=t.get("dlexp.follows"), action=t.get("dlexp.action"))

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
        tags = [RunTag(k, scrub(str(v))) for k, v in msg.get("tags", {}).items()]
        if metrics or tags:
            c.log_batch(run_id, metrics=metrics, tags=tags)
        document = scrub_tree(msg.get("document"))  # its next-step commands repeat the overrides
        if document is not None:
            c.set_tag(run_id, DESCRIPTION, scrub(self.description(document, msg.get("tags", {}))))
            c.log_dict(run_id, document, "diagnosis.json")
            history = msg.get("history", [])
            if self.resumed:
                history = self._whole_history(history)
            with tempfile.TemporaryDirectory() as tmp:
                from dlexp.render import plots

                for path in plots.draw(document, history, Path(tmp)):
                    c.log_artifact(run_id, str(path), "plots")
        for local, target in msg.get("artifacts", {}).items():
            if Path(local).is_dir() and any(Path(local).iterdir()):
                c.log_artifacts(run_id, local, target)
        if not self.attached or msg.get("status", "FINISHED") != "FINISHED":
            c.set_terminated(run_id, msg.get("status", "FINISHED"))
        for local in msg.get("cleanup", []):
            shutil.rmtree(local, ignore_errors=True)


def _now() -> int:
    import time

    return int(time.time() * 1000)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def serve(stdin=sys.stdin, stdout=sys.stdout) -> None:
    """Read JSON lines: start, epoch..., finish. Reply to start, compatible and finish with one JSON line each."""

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
                from dlexp.render import plots  # noqa: F401  (matplotlib loads while the model trains)
            elif session is None:
                continue
            elif op == "epoch":
                session.epoch(msg)
            elif op == "compatible":  # runs whose weights this run could start from (see transfer.py)
                from dlexp.tracking.transfer import compatible_runs

                try:
                    runs = compatible_runs(session.uri, msg["config"], exclude=session.run_id)
                except Exception:  # a suggestion is never worth failing a finished run for
                    runs = []
                reply({"runs": runs})
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
    if session is not None and not session.attached:  # an attached run's own writer ends it
        try:
            session.client.set_tag(session.run_id, "dlexp.error", "training process ended before finishing")
            session.client.set_terminated(session.run_id, "FAILED")
        except Exception:
            pass

