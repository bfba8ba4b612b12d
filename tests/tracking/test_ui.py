"""`dlexp ui` stops what it started: a signal to it stops the MLflow server and all its workers, and frees the
port. Real processes: `dlexp ui` and MLflow's server with its default workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    runs = tmp_path_factory.mktemp("ui") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLEXP_RUNS_DIR", str(runs))
        mp.delenv("DLEXP_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        from dlexp.tracking import process as tracking_process

        tracking_process.client(create=True)
    return runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT does not count
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_until_answers(proc: subprocess.Popen, port: int, deadline_s: float = 180) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"dlexp ui exited with {proc.returncode} before answering:\n{proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"dlexp ui did not answer on port {port} within {deadline_s:.0f} s")
        time.sleep(0.5)


# SIGHUP and Ctrl-C (SIGINT) go through the same handler as SIGTERM; each case costs a server start, so one
@pytest.mark.parametrize("signum", [signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_stops_the_server_and_its_workers(store, signum):
    port = _free_port()
    env = dict(os.environ, DLEXP_RUNS_DIR=str(store))
    proc = subprocess.Popen([sys.executable, "-m", "dlexp", "ui", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started: list[psutil.Process] = []
    try:
        _wait_until_answers(proc, port)
        started = psutil.Process(proc.pid).children(recursive=True)
        assert started, "dlexp ui started no server process"
        proc.send_signal(signum)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"dlexp ui still running 30 s after {signum.name}")
        assert proc.returncode == 0, err
        assert f"http://localhost:{port}/" in out
        _, alive = psutil.wait_procs(started, timeout=10)
        assert not alive, f"left running after {signum.name}: {[(p.pid, p.cmdline()) for p in alive]}"
        assert _port_free(port), f"port {port} still taken after {signum.name}"
    finally:  # whatever this test started and is still there, so that a failure does not leave a server up
        for p in [*started, psutil.Process(proc.pid)] if proc.poll() is None else started:
            if p.is_running():
                p.kill()


_WORKERS = """
import subprocess, sys, time
workers = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(2)]
print("up", flush=True)
time.sleep(600)
"""
_UI = """
import os, sys
from dlexp.tracking.serve import serve
sys.exit(serve([sys.executable, "-c", sys.argv[1]], dict(os.environ)))
"""


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_sighup_and_ctrl_c_stop_a_server_and_its_workers_too(signum):
    """The same stop as `dlexp ui`'s, with a stand-in server that starts two workers (no MLflow start-up)."""
    proc = subprocess.Popen([sys.executable, "-c", _UI, _WORKERS], stdout=subprocess.PIPE, text=True)
    started: list[psutil.Process] = []
    try:
        assert proc.stdout.readline().strip() == "up"
        deadline = time.monotonic() + 30
        while len(started) < 3:  # the server and its two workers
            started = psutil.Process(proc.pid).children(recursive=True)
            if time.monotonic() > deadline:
                pytest.fail(f"the stand-in server started {len(started)} of 3 processes within 30 s")
            time.sleep(0.1)
        proc.send_signal(signum)
        try:
            assert proc.wait(timeout=30) == 0
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve still running 30 s after {signum.name}")
        _, alive = psutil.wait_procs(started, timeout=10)
        assert not alive, f"left running after {signum.name}: {[p.pid for p in alive]}"
    finally:
        for p in [*started, psutil.Process(proc.pid)] if proc.poll() is None else started:
            if p.is_running():
                p.kill()
