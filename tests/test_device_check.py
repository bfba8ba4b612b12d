"""`python benchmarks/device_check.py --dry-run OUT` walks every step of the GPU machine's check on the CPU at
tiny sizes and leaves its figures in OUT as JSON and as one Markdown table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
STEPS = ["install", "versions", "gpu_tests", "speed_mlp", "speed_cnn", "launchers"]
SPEED = ["per-epoch ratio dlexp/bare (whole runs)", "steady-state epoch ratio dlexp/bare",
         "fixed overhead of a 1-epoch run (s)"]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("device-check")
    env = {k: v for k, v in os.environ.items() if k not in ("DLEXP_TRACKING_URI", "MLFLOW_TRACKING_URI")}
    try:
        done = subprocess.run([sys.executable, "benchmarks/device_check.py", "--dry-run", str(out)], cwd=ROOT,
                              capture_output=True, text=True, timeout=1000, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"device_check.py --dry-run did not end within 1000 s:\n{exc.stdout}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, json.loads((out / "device_check.json").read_text()), (out / "device_check.md").read_text()


def _figures(doc, step):
    return {f["figure"]: f for f in doc["figures"] if f["step"] == step}


def test_every_step_ran_on_the_cpu_and_install_was_skipped(dry_run):
    _, doc, _ = dry_run
    assert doc["dry_run"] is True
    assert list(doc["steps"]) == STEPS
    assert doc["steps"]["install"]["status"] == "skipped: dry run (nothing installed)"
    assert {s: v["status"] for s, v in doc["steps"].items() if s != "install"} == dict.fromkeys(STEPS[1:], "done")
    assert doc["versions"]["device"] == "cpu" and doc["versions"]["torch"].startswith("2.")
    assert doc["elapsed_s"] < doc["budget_s"]


def test_the_gpu_tests_are_each_skipped_with_the_reason(dry_run):
    _, doc, _ = dry_run
    rows = {k: v for k, v in _figures(doc, "gpu_tests").items() if k not in ("summary", "status")}
    assert "test_a_checkpoint_written_on_the_gpu_resumes_on_the_cpu" in rows and len(rows) >= 6
    assert {r["value"] for r in rows.values()} == {"SKIPPED"}
    assert all(r["note"].startswith("no CUDA device here") for r in rows.values())
    assert _figures(doc, "gpu_tests")["summary"]["value"] == f"{len(rows)} skipped"


def test_the_speed_figures_of_both_workloads_and_the_launchers(dry_run):
    _, doc, _ = dry_run
    for step, workload in (("speed_mlp", "MLP"), ("speed_cnn", "CNN")):
        rows = _figures(doc, step)
        assert workload in rows["workload"]["value"] and "accelerator cpu" in rows["workload"]["note"]
        for name in SPEED:
            assert isinstance(rows[name]["value"], float), (step, name)
        assert rows["per-epoch ratio dlexp/bare (whole runs)"]["note"] == "target <= 1.05"
    rows = _figures(doc, "launchers")
    assert rows["joblib, n_jobs=2 (s)"]["value"] > 0 and rows["basic launcher (s)"]["value"] > 0
    assert rows["joblib/basic"]["value"] > 0


def test_the_markdown_table_holds_every_figure(dry_run):
    out, doc, md = dry_run
    assert md.startswith("# dlexp device check (dry run, CPU)")
    assert "- device: cpu;" in md and "| step | figure | value | note |" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| step |")]
    assert len(rows) == len(doc["figures"])
    for step in STEPS:
        assert f"| {step} | status |" in md
    assert "| speed_cnn | fixed overhead of a 1-epoch run (s) |" in md
    assert (out / "logs" / "gpu_tests.log").is_file()
