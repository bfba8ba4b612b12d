"""A run's journal: what `dlexp train` has started, kept in its work folder until the run is in the store.

The training process does not wait for MLflow's start-up (its tracking process creates the run meanwhile), so
a kill -9 of the whole command in its first seconds (both processes: an out-of-memory kill, a scheduler's
kill of the job, a closed container) would leave no run at all. Before anything else the training process
writes `journal.jsonl` in the run's work folder: the run it is about to create (name, params, tags, the
config), then its tracking process's pid, then one line per finished epoch. The journal goes when the
command is done with its tracking process (the run ended in the store, or the store refused it, which the
command says at once). The next `dlexp runs`, `dlexp diagnose` or `dlexp train --resume` finds a journal
whose two processes are gone and whose run the store does not hold, and records that run, FAILED, with the
epochs it had finished; its work folder (and checkpoint) stays, so `--resume` continues it.

Writing costs one small file at the start and one line per epoch; no MLflow here (the training process
imports this module), the store is reached through the client the caller hands over.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

NAME = "journal.jsonl"
REASON = ("the command was killed before its run reached the store (kill -9?); recorded from its journal by a "
          "later dlexp command")


class Journal:
    """The training process's side: appends JSON lines to `workdir/journal.jsonl`."""

    def __init__(self, workdir: Path, start: dict):
        self.path = Path(workdir) / NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write({"start": start}, mode="w")

    def _write(self, entry: dict, mode: str = "a") -> None:
        with open(self.path, mode) as f:  # one write() per line: a kill leaves whole lines, or a last partial
            f.write(json.dumps(entry) + "\n")

    def tracker(self, pid: int) -> None:
        from dlexp.training.signals import process_start

        self._write({"tracker": pid, "tracker_start": process_start(pid)})

    def epoch(self, row: dict) -> None:
        self._write({"epoch": row})

    def close(self) -> None:
        """The run has ended in the store: nothing left to recover."""
        self.path.unlink(missing_ok=True)


def read(path: Path) -> dict | None:
    """{"start": ..., "tracker": pid | None, "tracker_start": ..., "epochs": [rows]}; None when unreadable."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    out: dict = {"start": None, "tracker": None, "tracker_start": None, "epochs": []}
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the last line, cut by the kill
        if "start" in entry:
            out["start"] = entry["start"]
        elif "tracker" in entry:
            out.update(tracker=entry["tracker"], tracker_start=entry.get("tracker_start"))
        elif "epoch" in entry:
            out["epochs"].append(entry["epoch"])
    return out if out["start"] else None


def _gone(pid, start) -> bool:
    from dlexp.training.signals import process_alive

    return not pid or not process_alive(int(pid), start or None)


def pending(work: Path, uri: str) -> list[tuple[Path, dict]]:
    """The journals under `work` (runs_dir()/work) for the store `uri` whose processes are both gone."""
    from dlexp.tracking.store import redact

    found = []
    for path in sorted(work.glob(f"*/{NAME}")):
        entry = read(path)
        if entry is None or entry["start"].get("uri") != redact(uri):
            continue
        s = entry["start"]
        if _gone(s.get("pid"), s["tags"].get("dlexp.pid_start")) and _gone(entry["tracker"], entry["tracker_start"]):
            found.append((path, entry))
    return found


def recover(c, work: Path) -> list[str]:
    """Record the runs of dead commands' journals in the store `c` (an MlflowClient) FAILED; their ids.

    A run the tracking process did create (found by its work folder) is left to `runs.settle`; a journal is
    taken by one dlexp command at a time (a lock on the file) and removed once its run is in the store."""
    import fcntl

    ids = []
    for path, entry in pending(work, c.tracking_uri):
        with open(path) as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # another dlexp command records it now
            if not path.exists():
                continue
            run_id = _record(c, entry)
            if run_id:
                ids.append(run_id)
            path.unlink(missing_ok=True)
    return ids


def _record(c, entry: dict) -> str | None:
    from mlflow.entities import Metric, Param, RunTag

    from dlexp.tracking.store import flatten

    s = entry["start"]
    if s.get("resume_run_id"):
        return None  # the run exists; `runs.settle` ends it FAILED if it was left RUNNING
    from dlexp.tracking.client import experiment_id

    exp = experiment_id(c, s["experiment"])
    workdir = s["tags"].get("dlexp.workdir", "")
    if workdir and c.search_runs([exp], filter_string=f"tags.`dlexp.workdir` = '{workdir}'", max_results=1):
        return None  # the tracking process created it before it was killed
    tags = dict(s["tags"], **{"dlexp.pid": str(s.get("pid", "")), "dlexp.error": REASON})
    if s.get("run_name"):
        tags["mlflow.runName"] = s["run_name"]
    import socket

    tags.setdefault("dlexp.host", socket.gethostname())
    run = c.create_run(exp, tags=tags)
    run_id = run.info.run_id
    params = [Param(k, str(v)[:500]) for k, v in flatten(s.get("params", {})).items()]
    for i in range(0, len(params), 100):
        c.log_batch(run_id, params=params[i:i + 100])
    now = int(time.time() * 1000)
    metrics = [Metric(f"epoch/{k}", float(v), now, int(row["epoch"])) for row in entry["epochs"]
               for k, v in row.items()
               if k not in ("epoch", "step") and isinstance(v, (int, float)) and math.isfinite(v)]
    for i in range(0, len(metrics), 500):
        c.log_batch(run_id, metrics=metrics[i:i + 500])
    for name, text in s.get("files", {}).items():
        c.log_text(run_id, text, name)
    c.set_terminated(run_id, "FAILED")
    return run_id


