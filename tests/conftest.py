"""Shared fixtures: every test that touches a store gets its own, under a temporary directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Environment variables that would point dlexp (or MLflow, or Hydra) somewhere other than the test's own store,
# or that dlexp and Lightning set in-process and must not leak from one test into the next.
_ISOLATE = ("DLEXP_TRACKING_URI", "MLFLOW_TRACKING_URI", "DLEXP_DEBUG", "HYDRA_FULL_ERROR", "PL_GLOBAL_SEED",
            "PL_SEED_WORKERS")


def pytest_configure(config):
    # raised by Lightning's own code on every fit with this torch; not dlexp's, and not something a test can fix
    config.addinivalue_line("filterwarnings", "ignore:.*LeafSpec.*")


def _isolate(mp: pytest.MonkeyPatch, root) -> "os.PathLike":
    runs = root / "runs"
    mp.setenv("DLEXP_RUNS_DIR", str(runs))
    for name in _ISOLATE:
        mp.delenv(name, raising=False)
    mp.chdir(root)
    return runs


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """DLEXP_RUNS_DIR -> tmp_path/runs (not created), cwd -> tmp_path, no tracking URI from the environment."""
    return _isolate(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def module_runs_dir(tmp_path_factory):
    """The same isolation for a whole module, so that one training run can serve several tests."""
    root = tmp_path_factory.mktemp("dlexp")
    with pytest.MonkeyPatch.context() as mp:
        yield _isolate(mp, root)


@pytest.fixture(autouse=True)
def _clean_global_hydra():
    """Hydra keeps global state; a CLI run in-process or a compose() must not leak into the next test."""
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()


def run_dlexp(*args: str, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m dlexp ARGS` in a fresh process, with the (monkeypatched) environment of the test."""
    return subprocess.run([sys.executable, "-m", "dlexp", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


@pytest.fixture
def dlexp_proc():
    return run_dlexp



def invoke_ok(*args: str):
    """`dlexp ARGS` in this process (Typer's CliRunner); fails the test with its output unless it exits 0."""
    from typer.testing import CliRunner

    from dlexp.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def one_error_line(result, *named: str, code: int | None = None) -> str:
    """The contract for every failure: a non-zero exit (`code` when given), no traceback, and one line on stderr,
    `dlexp: error: ...`, naming each of `named`; returns that line. `result`: a CliRunner result or a
    CompletedProcess (tests import it: `from conftest import one_error_line`)."""
    exit_code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert exit_code not in (0, None) and (code is None or exit_code == code), (exit_code, result.stdout,
                                                                                result.stderr)
    assert "Traceback" not in result.stdout and "Traceback" not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith("dlexp: error: "), lines[0]
    for word in named:
        assert word in lines[0], (word, lines[0])
    return lines[0]


HEAVY = ("torch", "pytorch_lightning", "lightning_fabric", "mlflow", "sklearn", "matplotlib")
_PROBE = """
import json, sys
from dlexp.cli import main
heavy = json.loads(sys.argv[2])
sys.argv = ["dlexp", *json.loads(sys.argv[1])]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
print("\\nPROBE " + json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def probe_imports(*args: str) -> dict:
    """`dlexp ARGS` in a fresh process: its exit code, which of HEAVY it imported, its stdout and stderr."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(HEAVY)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE "))
    return dict(json.loads(line[len("PROBE "):]), stdout=proc.stdout, stderr=proc.stderr)


@pytest.fixture
def import_probe():
    return probe_imports


# ------------------------------------------------------------------- one PostgreSQL and one MLflow server


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL for the whole session (pgserver, from `dlexp[server]`): a function that gives
    the SQLAlchemy URL of one of its databases, created on first use."""
    import shutil
    import tempfile
    from pathlib import Path

    import pgserver

    # run as root, pgserver runs PostgreSQL as its own user, which must reach the folder: not under pytest's
    # private tmp folder
    root = Path(tempfile.mkdtemp(prefix="dlexp-pg-"))
    root.chmod(0o755)
    server = pgserver.get_server(root / "data", cleanup_mode="stop")
    made = set()

    def url(database: str) -> str:
        if database not in made:
            server.psql(f"CREATE DATABASE {database};")
            made.add(database)
        return server.get_uri(database).replace("postgresql://", "postgresql+psycopg://", 1)

    yield url
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to a server's process group (its workers too), SIGKILL to what is left after 10 s."""
    import signal

    for signum in (signal.SIGTERM, signal.SIGKILL):  # SIGKILL: whatever outlived the server's own stop
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            return
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory):
    """One `mlflow server` on that PostgreSQL with a shared artifact folder, as the README starts it: its URL."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in _ISOLATE}
    proc, log, url = _mlflow_server(["--backend-store-uri", postgres("mlflow")], root, port, env, "mlflow server")
    yield url
    _stop_group(proc)
    log.close()


def _mlflow_server(args: list[str], root, port: int, env: dict, what: str):
    """Start `mlflow server ARGS` in its own process group, its output in root/server.log, and wait (180 s at
    most, then fail with the log's end) until /health answers: (process, log file, URL)."""
    import time
    import urllib.request

    log = open(root / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", *args,
                             "--artifacts-destination", str(root / "artifacts"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return proc, log, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop_group(proc)
            pytest.fail(f"{what} did not start:\n" + (root / "server.log").read_text()[-3000:])
        time.sleep(0.5)


AUTH_ADMIN = ("admin", "team-pass-1234")  # the authenticated server's admin, as its auth config sets it


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory):
    """One `mlflow server --app-name basic-auth` (MLflow's own authentication, from `mlflow[auth]`), as the
    README's team-server recipe starts it, on a SQLite store (the session's PostgreSQL stays the other server's):
    its URL. Its admin is AUTH_ADMIN; a request without credentials gets 401."""
    pytest.importorskip("flask_wtf", reason="mlflow[auth] (dlexp[server]) is not installed")
    root = tmp_path_factory.mktemp("mlflow-auth")
    (root / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
        f"admin_username = {AUTH_ADMIN[0]}\nadmin_password = {AUTH_ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in _ISOLATE and not k.startswith("MLFLOW_TRACKING_")}
    env.update(MLFLOW_AUTH_CONFIG_PATH=str(root / "auth.ini"), MLFLOW_FLASK_SERVER_SECRET_KEY="dlexp-tests")
    proc, log, url = _mlflow_server(["--app-name", "basic-auth", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"],
                                    root, port, env, "mlflow server --app-name basic-auth")
    yield {"url": url, "root": root, "admin": AUTH_ADMIN}
    _stop_group(proc)
    log.close()
