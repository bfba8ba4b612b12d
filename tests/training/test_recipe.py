"""`dlexp recipe` end to end, small but real: a linear model on a non-linear task (experiment=underfit),
stopped by Ctrl-C after its start run, continued with --from, accepting the bigger model and stopping at the
budget; a run against itself refused; bad input as one line."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import one_error_line
from typer.testing import CliRunner

from dlexp.cli import app

TINY = ["experiment=underfit", "data.n_train=600", "data.n_train_dev=300", "data.n_dev=300", "data.n_test=300",
        "data.batch_size=64", "trainer.max_epochs=2", "early_stopping.patience=0"]


@pytest.fixture(scope="module")
def stopped(module_runs_dir):
    """A recipe (budget 3) interrupted with SIGINT once its first round has begun: (parent id, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "dlexp", "recipe", *TINY, "--budget", "3", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    lines: queue.Queue = queue.Queue()  # read by a thread: the deadline holds even when no line comes

    def read():
        for line in proc.stderr:  # progress goes to stderr with --json
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen, round_1 = [], False
    deadline = time.monotonic() + 240
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            pytest.fail("no first candidate of round 1 within 240 s:\n" + "".join(seen))
        if line is None:
            pytest.fail(f"the recipe ended (exit {proc.wait()}) before its first candidate:\n" + "".join(seen))
        seen.append(line)
        round_1 = round_1 or "round 1" in line
        if round_1 and line.startswith("dlexp: training"):  # the first candidate has begun
            break
    proc.send_signal(signal.SIGINT)
    try:  # its stderr stays with the reader thread; its stdout (the JSON document, if any) is short
        proc.wait(timeout=120)
        out = proc.stdout.read()
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the recipe did not stop within 120 s of its Ctrl-C:\n" + "".join(seen))
    rest = []
    while (line := lines.get(timeout=10)) is not None:
        rest.append(line)
    err = "".join(seen + rest)
    return proc.returncode, out, err


@pytest.mark.slow
def test_ctrl_c_writes_the_trail_then_from_continues_and_accepts_a_real_improvement(stopped, module_runs_dir):
    from dlexp.tracking import runs as tracking_runs
    from dlexp.tracking.client import client
    from dlexp.diagnosis.actions import label
    from dlexp.tracking.trail import read_trail

    code, out, err = stopped
    assert code == 130, err
    last = [ln for ln in err.splitlines() if ln.strip()][-1]  # after the interrupted job's own line
    assert last.startswith("dlexp: error: recipe stopped by SIGINT") and "Traceback" not in err, err
    parent = last.rsplit("dlexp recipe --from ", 1)[1].strip()
    c = client()
    assert c.get_run(parent).info.status == "KILLED"
    kept = read_trail(None, parent)
    assert kept["start"]["errors"]["test"] is None  # the start run's test error is not read
    assert kept["budget"]["used"] == 1 and kept["trail"] == []

    proc = subprocess.run([sys.executable, "-m", "dlexp", "recipe", "--from", parent, "--json"],
                          capture_output=True, text=True, timeout=400, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["run_id"] == parent
    assert doc["stopped_because"] == "budget" and doc["budget"] == {"limit": 3, "used": 3}
    rows = doc["trail"]
    assert [r["round"] for r in rows] == [1, 1] and {r["problem"] for r in rows} == {"avoidable_bias"}
    # the bias gap is many times the tolerance: a bold step (a network, trained 4x longer, a 3x learning rate)
    # beside the single bigger model
    assert rows[0]["action"].startswith("Bold step: bigger model + train longer + tune the learning rate")
    assert rows[0]["overrides"] == ["model=mlp", "trainer.max_epochs=8", "optimizer.lr=0.009"]
    assert rows[1]["action"].startswith("Bigger model") and rows[1]["overrides"] == ["model=mlp"]
    assert sum(r["accepted"] for r in rows) == 1
    bigger = next(r for r in rows if r["accepted"])
    # the multi-layer perceptron beats the linear model on dev, paired on the same examples, significantly
    assert "model=mlp" in bigger["command"] and bigger["method"] == "paired" and bigger["interval"][1] < 0
    start, final = doc["start"], doc["final"]
    assert final["run_id"] == bigger["run_id"] and final["errors"]["dev"] < start["errors"]["dev"]
    assert final["gaps"]["avoidable_bias"] < start["gaps"]["avoidable_bias"]
    assert final["errors"]["test"] is not None and "dev_overfitting" in final["gaps"]
    assert doc["left_to_try"] and all(a["command"] is None or "model=mlp" in a["command"] for a in doc["left_to_try"])

    # MLflow: every training run a child of the parent (the interrupted one KILLED), the trail and the plot
    children = tracking_runs.child_runs(None, parent)
    assert len(children) == 4
    assert sorted(ch["status"] for ch in children) == ["FINISHED"] * 3 + ["KILLED"]
    run = c.get_run(parent)
    assert run.info.status == "FINISHED" and run.data.tags["dlexp.kind"] == "recipe"
    assert run.data.tags["dlexp.recipe.stopped_because"] == "budget"
    names = {f.path for f in c.list_artifacts(parent, "recipe")} | {f.path for f in c.list_artifacts(parent, "plots")}
    assert {"recipe/trail.csv", "recipe/trail.json", "plots/recipe_path.png"} <= names
    labelled = c.get_run(bigger["run_id"]).data.tags
    assert labelled["dlexp.follows"] == start["run_id"] and labelled["dlexp.action"] == bigger["action"]
    # its Description in MLflow: the run and step it follows, the paired comparison, then its own diagnosis
    text = labelled["mlflow.note.content"]
    assert f"Follows run `{start['run_id']}`" in text and f"Compared with run `{start['run_id']}`" in text
    assert text.index("Compared with run") < text.index("**Verdict") and "| paired |" in text
    assert c.get_run(bigger["run_id"]).info.run_name == f"recipe round 1 · {label(bigger['action'])}"

    # a run compared with itself: a difference of 0, within noise, refused
    from dlexp.diagnosis.recipe import decide
    from dlexp.tracking.compare import compare_runs

    same = decide(compare_runs(None, start["run_id"], start["run_id"]).document(), tolerance=0.01,
                  target="avoidable_bias")
    assert not same.accepted and not same.improved

    # continuing a recipe that spent its budget trains nothing more, and prints the trail table again
    again = CliRunner().invoke(app, ["recipe", "--from", parent])
    assert again.exit_code == 0, again.output
    assert len(tracking_runs.child_runs(None, parent)) == 4
    table = again.stdout
    assert f"parent run {parent}" in table and "stopped because: budget" in table
    assert "yes" in table and "dev_overfitting" in table and "left to try" in table


@pytest.mark.parametrize("args, named", [
    (["--budget", "0"], ["--budget", "0"]),
    (["--candidates", "0"], ["--candidates"]),
    (["--from", "no-such-run"], ["no-such-run"]),
    (["--from", "no-such-run", "data=digits"], ["--from", "data=digits"]),
], ids=["budget-0", "candidates-0", "unknown-run", "from-with-other-overrides"])
def test_bad_input_is_one_line(args, named, module_runs_dir):
    from dlexp.tracking.client import client

    client(create=True)  # a store that exists, without that run
    result = CliRunner().invoke(app, ["recipe", *args])
    one_error_line(result, *named)


def test_the_test_split_is_held_out_while_selecting():
    from dlexp.diagnosis import Report, SplitErrors, diagnose
    from dlexp.training.recipe import held_out

    sizes = {"train": 8000, "train_dev": 2000, "dev": 2000, "test": 2000}
    overfit_dev = diagnose(SplitErrors(0.01, 0.012, 0.014, 0.016, 0.20), sizes=sizes)
    assert overfit_dev.verdict == "dev_overfitting"
    blind = held_out(Report(overfit_dev, (), sizes=sizes))
    assert blind.verdict == "within_tolerance" and "dev_overfitting" not in blind.problems
    # whatever the test error, the recipe sees the same run
    same = held_out(Report(diagnose(SplitErrors(0.01, 0.012, 0.014, 0.016, 0.016), sizes=sizes), (), sizes=sizes))
    assert same.gaps == blind.gaps and same.verdict == blind.verdict


@pytest.mark.slow
def test_a_recipe_on_the_bias_problem_lowers_the_training_error_beyond_its_interval(runs_dir):
    """The bias problem, small: the recipe ends with a training error below the start run's, and the paired
    95% interval of that difference (dlexp compare on the same training examples) lies below 0."""
    from dlexp.tracking.compare import compare_runs

    proc = subprocess.run([sys.executable, "-m", "dlexp", "recipe", *TINY, "trainer.max_epochs=3", "--budget", "3",
                           "--candidates", "1", "--json", "--same-data"],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    start, final = doc["start"], doc["final"]
    assert start["verdict"] == "avoidable_bias" and doc["accepted"] >= 1
    assert final["run_id"] != start["run_id"]
    train = compare_runs(None, start["run_id"], final["run_id"]).document()["splits"]["train"]
    assert train["b"] < train["a"] and train["interval"][1] < 0, train
    # round 1: the bias gap is many times the tolerance, so the bold step (an MLP, 4x the epochs, 3x the
    # learning rate) comes first, and wins
    rows = doc["trail"]
    assert rows[0]["accepted"] and rows[0]["improved"], rows
    assert rows[0]["overrides"] == ["model=mlp", "trainer.max_epochs=12", "optimizer.lr=0.009"]
    # variance is now the largest problem: round 2 is variance's bold step, a bigger network, regularized (one
    # more layer, dropout, weight decay), read from the new incumbent's dev error per epoch (still falling at
    # its last epoch: twice the epochs too)
    assert len(rows) == 2 and rows[1]["round"] == 2, rows
    assert rows[1]["problem"] == "variance", rows
    assert rows[1]["action"].startswith("Bold step: one more layer + raise dropout + weight decay + train longer"), rows
    more, drop, decay, epochs = rows[1]["overrides"]
    assert (more, drop, epochs) == ("model.hidden=[128,128,128]", "model.dropout=0.2", "trainer.max_epochs=24"), rows
    assert decay in ("optimizer.weight_decay=0.001", "optimizer.weight_decay=0.01"), rows
    # --same-data (as the README runs it): no candidate, tried or left, adds training rows
    steps = [o for r in rows for o in r["overrides"]] + [o for r in doc["left_to_try"] if r["command"]
                                                         for o in shlex.split(r["command"])]
    assert steps and not any(o.startswith("data.n_train=") and o != "data.n_train=600" for o in steps), steps


@pytest.mark.slow
def test_a_clearly_losing_candidate_is_stopped_early_and_costs_a_run(runs_dir, monkeypatch):
    """The early stop, real: Optuna's pruner inside a real Lightning fit. The rule is made impossible to pass
    (the incumbent's curve lowered by 100%: every candidate loses at its first compared epoch, half the epochs
    of the longer run). Round 1's single bigger model (3 epochs, as the start run) is stopped after 2 of its 3
    epochs, counts as one run of the budget and is not accepted; the bold step, which plans 12 epochs against
    the incumbent's 3, has nothing to be compared with at its 6th and trains to its end; with --no-prune the
    bigger model trains to its last epoch."""
    from dlexp.tracking.runs import dev_curve
    from dlexp.training import prune

    monkeypatch.setattr(prune, "margin_of", lambda dev_error, n_dev, k=prune.MARGIN_SE: -1.0)
    args = ["recipe", *TINY, "trainer.max_epochs=3", "--budget", "3", "--candidates", "2", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout[result.stdout.index("{\n"):])
    bold, bigger = doc["trail"]
    assert bold["action"].startswith("Bold step") and bold.get("stopped_early") is None, bold
    assert len(dev_curve(None, bold["run_id"])) == 12
    assert bigger["overrides"] == ["model=mlp"], bigger
    assert bigger["outcome"] == "stopped early" and not bigger["accepted"] and not bigger["improved"], bigger
    assert bigger["stopped_early"] == "2 of 3", bigger
    assert bigger["reason"].startswith("stopped early after 2 of 3 planned epochs"), bigger
    assert len(dev_curve(None, bigger["run_id"])) == 2  # the epochs it ran
    assert doc["budget"]["used"] == 3
    # the incumbent's overrides, and so the commands that follow, carry no early-stop setting
    assert not any("prune." in r["command"] for r in doc["left_to_try"] if r["command"])

    result = CliRunner().invoke(app, [*args, "--no-prune"])
    assert result.exit_code == 0, result.output
    bigger = json.loads(result.stdout[result.stdout.index("{\n"):])["trail"][1]
    assert bigger["overrides"] == ["model=mlp"] and bigger["outcome"] != "stopped early", bigger
    assert len(dev_curve(None, bigger["run_id"])) == 3
