"""`dlexp ui`'s MLflow server as a child that ends with it. No MLflow import here: the server is its own process.

The server runs in its own process group (its own session), so that its workers (uvicorn or gunicorn
children) can be stopped together: Ctrl-C, SIGTERM (a service manager, `kill`) or SIGHUP (the terminal
closed) to `dlexp ui` stops the whole group, SIGTERM first and SIGKILL for what is left after a few seconds,
and the port is free again. Only a SIGKILL of `dlexp ui` itself, which no process can catch, leaves it up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 5.0


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop(signum)


def serve(cmd: list[str], env: dict) -> int:
    """Run `cmd` (the server) until it exits (its exit code) or a stop signal arrives (0, once it is gone)."""
    saved = {s: signal.signal(s, _raise_stop) for s in STOP_SIGNALS}
    proc = None
    try:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        return proc.wait()
    except (_Stop, KeyboardInterrupt):
        return 0
    finally:
        for s in STOP_SIGNALS:  # a second signal while the group stops must not cut the stop short
            signal.signal(s, signal.SIG_IGN)
        if proc is not None:
            stop_group(proc)
        for s, handler in saved.items():
            signal.signal(s, handler)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM to the process group that `proc` leads, SIGKILL to whatever is left after `grace_s`."""
    pgid = proc.pid
    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, grace_s)):
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()  # reaps the leader, so that a finished group no longer answers
            if not _group_alive(pgid):
                return
            time.sleep(0.05)
    proc.poll()
