"""Ctrl-C and SIGTERM as a graceful stop; whether the process that wrote a run is still alive. No torch here.

Outside of training a signal stops `dlexp train` at once: the handler raises KeyboardInterrupt, which code
that catches `Exception` (OmegaConf's validation wraps what it catches into another error) lets through, and
the job turns it into `Interrupted`. While Lightning trains, the first SIGINT or SIGTERM is handed to
Lightning's own SIGTERM machinery (`trainer.received_sigterm`), which stops at the next step boundary; a
checkpoint is written there and the run ends KILLED. A second Ctrl-C stops at once, without a checkpoint.

Every signal a `Stopper` handles is also noted for the whole process (`received`), so that whatever
exception it became on its way up, the job, the sweep, the group, the curve and the recipe still see an
interruption (exit 128 + signal) rather than a failure. Nothing here runs per training step.
"""

from __future__ import annotations

import contextlib
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


_received: list[int] = []  # the signals a Stopper (or the command, `watch`) handled in this process


def received() -> int | None:
    """The first SIGINT / SIGTERM this process handled since the command began (`forget`), or None."""
    return _received[0] if _received else None


def forget() -> None:
    """A new command begins (several run in one process under tests)."""
    _received.clear()


def note(signum: int) -> None:
    if not _received:
        _received.append(signum)


def interruption(exc: BaseException | None) -> int | None:
    """The signal behind `exc`: its own (Interrupted, KeyboardInterrupt), else one this process handled, else
    None. A signal that lands inside library code can come out as another exception (OmegaConf re-raises
    what it catches during validation with its own text); the noted signal still says what happened."""
    if isinstance(exc, Interrupted):
        return exc.signum
    if received() is not None:
        return received()
    return signal.SIGINT if isinstance(exc, KeyboardInterrupt) else None


@contextlib.contextmanager
def watch():
    """For one command: a fresh record, and Ctrl-C noted as well as raised (KeyboardInterrupt, as Python's own
    handler does) outside the jobs, whose Stopper takes over while each runs."""
    import threading

    forget()
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame):
        note(signum)
        raise KeyboardInterrupt

    saved = signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved)


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
        note(signum)
        if not self.graceful:
            self.signum = self.signum or signum
            raise KeyboardInterrupt  # a BaseException: no `except Exception` on the way turns it into a failure
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
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False  # a zombie: it has ended, its parent has not collected it yet
    except (OSError, IndexError):
        pass
    if start:
        now = process_start(pid)
        if now is not None and now != start:
            return False  # the pid was reused by another process
    return True
