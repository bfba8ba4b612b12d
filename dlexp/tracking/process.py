"""The tracking process that writes a run (its MLflow client on the store is `client.py`).

`python -m dlexp.tracking` (`__main__.py`: signals ignored first, then `serve` here) is the tracking process
that `dlexp train` starts first, in its own session. It imports MLflow and opens the store while the training
process imports Lightning and trains, then logs what it is sent as JSON lines on stdin. If the training process dies before saying `finish`, the run ends FAILED.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bars in dlexp's output
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from dlexp.errors import StoreError, first_line
from dlexp.tracking import datasets
from dlexp.tracking.client import DESCRIPTION, client, experiment_id
from dlexp.tracking.store import flatten, scrub, scrub_tree

MAX_PARAM = 500  # characters of a param value kept; the whole config is in config.yaml


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

    def finish(self, msg: dict) -> list[str]:
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
        if msg.get("datasets"):
            datasets.log(c, run_id, msg["datasets"])
        warnings = self.log_model(msg["model"]) if msg.get("model") else []
        for local, target in msg.get("artifacts", {}).items():
            if Path(local).is_dir() and any(Path(local).iterdir()):
                c.log_artifacts(run_id, local, target)
        if not self.attached or msg.get("status", "FINISHED") != "FINISHED":
            c.set_terminated(run_id, msg.get("status", "FINISHED"))
        for local in msg.get("cleanup", []):
            shutil.rmtree(local, ignore_errors=True)
        return warnings

    def log_model(self, sent: dict) -> list[str]:
        """Log the run's pyfunc model (and register it when asked); a failure is a tag and a warning, never
        a failed run: the run's diagnosis stands without its model."""
        from dlexp.tracking import model

        try:
            model_id = model.log(self.client, self.run_id, self.run.info.experiment_id, sent["folder"], sent["spec"])
        except Exception as exc:
            text = f"the run's model was not logged: {first_line(exc, mask=scrub)}"
            self.client.set_tag(self.run_id, "dlexp.model_error", text[:5000])
            return [text]
        if not sent.get("register"):
            return []
        try:
            version = model.register(self.client, self.uri, self.run_id, sent["register"], model_id)
        except Exception as exc:
            return [f"the run's model was not registered as {sent['register']}: {first_line(exc, mask=scrub)}"]
        return [f"registered the run's model as {sent['register']} version {version}"]


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
                from dlexp.tracking import model  # noqa: F401  (and MLflow's model code)
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
                notes = session.finish(msg)
                reply({"ok": True, "notes": notes})
                return
        except StoreError as exc:
            reply({"error": str(exc)})
            return
        except Exception as exc:
            reply({"error": f"MLflow logging failed: {first_line(exc, mask=scrub)}"})
            if session is None:
                return
    # the training process went away without `finish`: never leave the run RUNNING
    if session is not None and not session.attached:  # an attached run's own writer ends it
        try:
            session.client.set_tag(session.run_id, "dlexp.error", "training process ended before finishing")
            session.client.set_terminated(session.run_id, "FAILED")
        except Exception:
            pass

