"""A fresh SQLite store is created atomically: a process killed (kill -9) while MLflow creates its tables leaves
either no store or a whole one, never a half-made one that every later command refuses."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

CREATE = """
import sys
from dlexp.tracking.client import client
print("creating", flush=True)
client(sys.argv[1], create=True)
print("created", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.3, 0.8])
def test_a_store_killed_while_created_is_absent_or_whole(tmp_path, delay):
    from dlexp.tracking.client import client

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    proc = subprocess.Popen([sys.executable, "-c", CREATE, uri], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "creating"  # MLflow is imported: the tables are being made
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not db.exists() or client(uri).search_experiments() is not None
    client(uri, create=True)  # the next command creates (or opens) it
    assert client(uri).search_experiments(max_results=1) is not None
