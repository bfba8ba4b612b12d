"""Ctrl-C and SIGTERM as a graceful stop; whether the process that wrote a run is still alive. No torch here.

Outside of training a signal stops `dlexp train` at once (`Interrupted`). While Lightning trains, the first
SIGINT or SIGTERM is handed to Lightning's own SIGTERM machinery (`trainer.received_sigterm`), which stops
at the next step boundary; a checkpoint is written there and the run ends KILLED. A second Ctrl-C stops at
once, without a checkpoint. Nothing here runs per training step.
"""

from __future__ import annotations

import os
import signal

from dlexp.errors import DlexpError


class Interrupted(DlexpError):
    """Training was stopped by a signal; the exit code is the shell's 128 + signal number (130, 143)."""

    def __init__(self, signum: int, *, checkpoint: str | None = None, step: int | None = None,
                 run_id: str | None = None):
        if isinstance(signum, str):  # rebuilt from its message: OmegaConf re-raises an error as type(e)(message)
            words = signum.split("stopped by ", 1)[-1].split()
            signum = getattr(signal.Signals, words[0] if words else "", signal.SIGINT)
        self.signum, self.checkpoint, self.step, self.run_id = signum, checkpoint, step, run_id
        name = signal.Signals(signum).name
        text = f"stopped by {name}" + (f" at step {step}" if step is not None else "")
        if run_id:
            text += f"; run {run_id} ended KILLED"
            if checkpoint:
                text += f", checkpoint saved; continue it with: dlexp train --resume {run_id}"
        elif checkpoint:
            text += f"; checkpoint {checkpoint}"
        super().__init__(text)

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return 128 + self.signum

    def __reduce__(self):  # crosses process boundaries (a job's result) with its fields, not only its text
        return _interrupted, (self.signum, self.checkpoint, self.step, self.run_id)


def _interrupted(signum: int, checkpoint: str | None, step: int | None, run_id: str | None) -> Interrupted:
    return Interrupted(signum, checkpoint=checkpoint, step=step, run_id=run_id)


class Stopper:
    """Owns SIGINT and SIGTERM for the duration of one `dlexp train` job."""

    def __init__(self):
        self.signum: int | None = None
        self.graceful = False   # True while Lightning's training loop runs (set by a callback)
        self._saved: dict[int, object] = {}

    def install(self) -> "Stopper":
        import threading

        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may own signals; Python's defaults stay
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._saved[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        self._saved.clear()

    def __enter__(self) -> "Stopper":
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()

    def _handle(self, signum, frame) -> None:
        if not self.graceful:
            self.signum = self.signum or signum
            raise Interrupted(self.signum)
        if self.signum is not None:
            if signum == signal.SIGINT:  # a second Ctrl-C: stop now, no checkpoint
                self.graceful = False
                raise Interrupted(self.signum)
            return  # Lightning's SIGTERM handler calls this one too: already noted
        self.signum = signum
        if signum == signal.SIGINT:
            # let Lightning stop at the next step boundary, as it does for SIGTERM
            lightning = signal.getsignal(signal.SIGTERM)
            if callable(lightning) and lightning is not self._handle:
                lightning(signal.SIGTERM, frame)


# ------------------------------------------------------------------------------ stale RUNNING runs


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (Linux), so that a reused pid is not taken for the writer."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, start: str | None = None) -> bool:
    """Whether `pid` (started at `start`, when known) still runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    if start:
        now = process_start(pid)
        if now is not None and now != start:
            return False  # the pid was reused by another process
    return True
