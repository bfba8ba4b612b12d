"""The training process's side of the tracking process (`python -m dlexp.tracking`, see process.py).

Starting MLflow (its import and opening the SQLite store) takes seconds; a separate process does it while
this one imports Lightning and trains, and receives each epoch and the final diagnosis as JSON lines.
The training process never imports mlflow.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

from dlexp.errors import StoreError
from dlexp.tracking.journal import Journal
from dlexp.tracking.store import redact, store_uri


class Recorder:
    def __init__(self, start: dict, *, log_path: Path):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        # the run exists from the first moment: in its journal until the store has it (see journal.py)
        start = dict(start, tags={"dlexp.workdir": str(log_path.parent), **start.get("tags", {})})
        self.journal = Journal(log_path.parent, dict(start, uri=redact(start.get("uri") or store_uri()),
                                                      pid=os.getpid()))
        self._log = open(log_path, "w")
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        # replies come on a pipe of their own: MLflow and other libraries print to the process's stdout
        # (e.g. 'View run ... at: URL' when it talks to a server), which goes to the log with its stderr
        reply_r, reply_w = os.pipe()
        try:
            # its own session: a terminal's Ctrl-C (sent to the foreground process group) is for the training
            # process, which tells this one how the run ended; none can land while it still imports MLflow
            self.proc = subprocess.Popen([sys.executable, "-m", "dlexp.tracking", "--reply-fd", str(reply_w)],
                                         stdin=subprocess.PIPE, stdout=self._log, stderr=self._log, text=True,
                                         env=env, pass_fds=(reply_w,), start_new_session=True)
        except BaseException:
            os.close(reply_r)
            raise
        finally:
            os.close(reply_w)
        self.journal.tracker(self.proc.pid)
        self._replies = os.fdopen(reply_r, "r")
        self._reply: dict | None = None
        self.finished = False
        self._send(dict(start, op="start", pid=os.getpid()))

    def _send(self, msg: dict) -> None:
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._read()  # the tracking process stopped: its last reply says why
            raise StoreError(f"the MLflow tracking process stopped; see {self.log_path}") from None

    def _read(self) -> dict:
        line = self._replies.readline()
        if not line:
            self.proc.wait()
            tail = self.log_path.read_text().strip().splitlines()[-1:] if self.log_path.exists() else []
            raise StoreError("the MLflow tracking process stopped" + (f": {tail[0]}" if tail else "")
                             + f" (log: {self.log_path})")
        reply = json.loads(line)
        if "error" in reply:
            raise StoreError(reply["error"])
        return reply

    @property
    def ok(self) -> bool:
        """Whether the run was created (or attached to) in the store."""
        return self._reply is not None and "run_id" in self._reply

    @property
    def run_id(self) -> str:
        """Waits for the store to be open and the run created (raises StoreError if that failed)."""
        if self._reply is None:
            self._reply = self._read()
        return self._reply["run_id"]

    def epoch(self, row: dict) -> None:
        # a store problem surfaces at the first epoch end after the tracking process reports it, not after the
        # last; training never waits for MLflow's start-up (the epochs queue on the pipe until the run exists)
        if self._reply is None and select.select([self._replies], [], [], 0)[0]:
            self._reply = self._read()  # its answer to `start`, read without waiting (raises its StoreError)
        self.journal.epoch(row)
        self._send({"op": "epoch", "epoch": row["epoch"], "row": row})

    def compatible_runs(self, config: dict) -> list[dict]:
        """Finished runs in the store whose weights this run's network could start from (model.init_from),
        looked up by the tracking process, which has MLflow loaded already."""
        _ = self.run_id
        self._send({"op": "compatible", "config": config})
        return self._read().get("runs", [])

    def finish(self, status: str, **payload) -> list[str]:
        """Log the final payload, end the run with `status` and wait until it is written; return the tracking
        process's notes (the model registered, or why the model was not logged)."""
        if self.finished:
            return []
        self.finished = True
        try:
            _ = self.run_id
            self._send(dict(payload, op="finish", status=status))
            return self._read().get("notes") or []  # the run is written; the process's exit needs no waiting
        finally:
            self.close(wait=False)

    def close(self, *, wait: bool = True) -> None:
        # ended in the store, or told the tracking process (which ends the run FAILED without `finish`), or the
        # store refused it (said at once): in every case nothing is left for a later command to record
        self.journal.close()
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()  # without `finish`, the tracking process ends the run FAILED
            except OSError:
                pass
        if wait:
            self.proc.wait()
        self._replies.close()
        self._log.close()
