"""Shared fixtures: every test that touches a store gets its own, under a temporary directory."""

from __future__ import annotations

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
