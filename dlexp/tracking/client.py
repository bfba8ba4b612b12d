"""The MLflow client on dlexp's store: opening it (one clear line when it cannot be), finding or creating the
experiment, and the names dlexp gives what it keeps there. Used by every module that reads or writes runs.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bars in dlexp's output
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from dlexp.errors import StoreError, first_line
from dlexp.tracking.store import redact, require_store, scrub, sqlite_path, store_uri

for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)

ERROR_KEYS = ("human", "train", "train_dev", "dev", "test")  # a run's errors: the metrics error/<key>


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
            if path is not None and not path.exists():
                _create(path)
            c = MlflowClient(tracking_uri=uri)
            c.search_experiments(max_results=1)  # opens (and on first use creates) the store
    except StoreError:
        raise
    except MlflowException as exc:
        raise StoreError(f"cannot open the MLflow store {redact(uri)}: {first_line(exc, mask=scrub)}") from None
    except Exception as exc:  # sqlalchemy errors for files that are not databases, unreachable servers, ...
        raise StoreError(f"cannot open the MLflow store {redact(uri)}: {first_line(exc, mask=scrub)}") from None
    return c


def _create(path: Path) -> None:
    """A fresh SQLite store, made under another name and renamed into place once MLflow has created its tables:
    a process killed while it creates them (kill -9 of a first run) leaves no half-made store that every later
    command would refuse ('table ... already exists')."""
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    MlflowClient(tracking_uri=f"sqlite:///{tmp}").search_experiments(max_results=1)
    os.replace(tmp, path)


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
        why = "connection refused" if "refused" in str(exc).lower() else first_line(exc, mask=scrub)
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
