"""Fault injection: signals, kill -9, resume, damaged checkpoints, divergence, concurrent writers, bad input,
the UI's exposure and secrets. Every test works in its own temporary runs folder.

The subprocess tests train for real (a few thousand rows, a few epochs) and send signals mid-training.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlexp.cli import EXIT_DIVERGED, app

DLEXP = [sys.executable, "-m", "dlexp"]
SMALL = ["data.n_train=300", "data.n_train_dev=60", "data.n_dev=60", "data.n_test=60", "trainer.max_epochs=2",
         "model.hidden=[16]"]
# long enough that a signal sent after the first epoch line lands mid-training
LONGER = ["data.n_train=2400", "data.n_train_dev=100", "data.n_dev=100", "data.n_test=100", "data.batch_size=8",
          "trainer.max_epochs=12", "model.hidden=[32]"]


def cli(*args, env=None):
    result = CliRunner().invoke(app, list(args), env=env)
    return result


def one_line_error(result, code):
    """The contract for every failure: the exit code, one `dlexp: error:` line, no traceback."""
    text = result.output if hasattr(result, "output") else result
    assert result.exit_code == code, text
    assert "Traceback" not in text
    errors = [ln for ln in text.splitlines() if ln.startswith("dlexp: error:")]
    assert len(errors) == 1, text
    return errors[0]


def runs_json():
    result = cli("runs", "--json", "-n", "50")
    assert result.exit_code == 0, result.output
    return {r["run_id"]: r for r in json.loads(result.output)}


def start(args, env=None):
    return subprocess.Popen(DLEXP + ["train", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or dict(os.environ, PYTHONWARNINGS="ignore"), start_new_session=True)


class Lines:
    """A process's stdout, read by a thread, so that a wait ends at its deadline even when no line comes."""

    def __init__(self, proc):
        self.proc, self.seen, self._queue = proc, [], queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, prefix: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line starting {prefix!r} within {timeout:.0f} s; stdout so far:\n"
                                     + "".join(self.seen)) from None
            if line is None:
                self.proc.wait()
                raise AssertionError(f"the process ended (exit {self.proc.returncode}) before a line starting "
                                     f"{prefix!r}:\n" + "".join(self.seen) + self.proc.stderr.read())
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def rest(self, timeout: float = 180) -> tuple[str, str]:
        """Wait for the process to end: (stdout, stderr)."""
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise AssertionError(f"the process did not end within {timeout:.0f} s:\n" + "".join(self.seen)) from None
        while (line := self._queue.get(timeout=10)) is not None:
            self.seen.append(line)
        return "".join(self.seen), err


def wait_until(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


def stored_names(names) -> bool:
    listed = cli("runs", "--json", "-n", "50")  # exit 3 while no store exists yet
    return listed.exit_code == 0 and set(names) <= {r["run_name"] for r in json.loads(listed.output)}


def one_stop_line(err: str) -> str:
    assert "Traceback" not in err and "Error executing job" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("dlexp: error:")]
    assert len(lines) == 1 and "ended KILLED" in lines[0] and "--resume" in lines[0], err
    return lines[0]


# ------------------------------------------------------------------------- interruptions and resume


@pytest.fixture(scope="module")
def stopped(module_runs_dir):
    """Three runs started together: one gets SIGTERM and one a terminal-style Ctrl-C (SIGINT to its process
    group) once it prints its first epoch; the third's process group gets kill -9 once its run is in the
    store (its tracking process, in its own session, survives it). {name: (exit code, stdout, stderr, run)}."""
    procs = {"term": start(LONGER + ["tracking.run_name=term"]), "int": start(LONGER + ["tracking.run_name=int"]),
             "kill9": start(LONGER + ["trainer.max_epochs=200", "tracking.run_name=kill9"])}
    lines = {name: Lines(p) for name, p in procs.items()}
    try:
        lines["term"].wait_for("epoch 1/")
        procs["term"].send_signal(signal.SIGTERM)
        lines["int"].wait_for("epoch 1/")
        os.killpg(procs["int"].pid, signal.SIGINT)      # what a terminal's Ctrl-C does
        lines["kill9"].wait_for("epoch 1/")
        wait_until(lambda: stored_names(["kill9"]), "the kill9 run in the store")
        os.killpg(procs["kill9"].pid, signal.SIGKILL)   # the training process's group
        outs = {name: lines[name].rest() for name in procs}
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    runs = {r["run_name"]: r for r in runs_json().values()}
    return {name: (procs[name].returncode, *outs[name], runs.get(name)) for name in procs}


@pytest.fixture(scope="module")
def reference(module_runs_dir):
    """An uninterrupted run of the same configuration (deterministic): what a resumed run must end with."""
    result = cli("train", *LONGER, "tracking.run_name=ref1", "trainer.deterministic=true")
    assert result.exit_code == 0, result.output
    return {r["run_name"]: r for r in runs_json().values()}["ref1"]


@pytest.mark.slow
def test_sigterm_stops_at_a_step_boundary_killed_with_a_checkpoint(stopped):
    code, out, err, run = stopped["term"]
    assert code == 143, (out, err)
    one_stop_line(err)
    assert run["status"] == "KILLED"
    from dlexp.tracking import client as tracking_process

    workdir = Path(tracking_process.client().get_run(run["run_id"]).data.tags["dlexp.workdir"])
    assert (workdir / "checkpoints/last.ckpt").is_file()


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_ends_killed_with_130(stopped):
    code, out, err, run = stopped["int"]
    assert code == 130, (out, err)
    one_stop_line(err)
    assert run["status"] == "KILLED"


@pytest.mark.slow
def test_kill9_of_the_training_group_leaves_a_failed_run(stopped):
    """Its tracking process, in its own session, sees it go and ends the run FAILED; `dlexp runs` and
    `dlexp diagnose` show it so."""
    code, out, err, run = stopped["kill9"]
    assert code == -signal.SIGKILL, (out, err)
    assert run["status"] == "FAILED"
    from dlexp.tracking import client as tracking_process

    assert tracking_process.client().get_run(run["run_id"]).info.status == "FAILED"  # settled in the store too
    line = one_line_error(cli("diagnose", run["run_id"]), 3)
    assert "no diagnosis" in line and ("ended before finishing" in line or "ended without finishing" in line)


@pytest.mark.slow
def test_runs_started_together_share_no_files(stopped):
    from dlexp.tracking import client as tracking_process

    c = tracking_process.client()
    workdirs = {c.get_run(run["run_id"]).data.tags["dlexp.workdir"] for *_, run in stopped.values()}
    assert len(workdirs) == 3


@pytest.mark.slow
def test_resume_continues_the_same_run_to_the_uninterrupted_result(stopped, reference):
    """The SIGTERM run resumed: the same MLflow run, each epoch logged once, FINISHED, with the same errors
    and verdict as an uninterrupted run with the same seed."""
    from dlexp.tracking import client as tracking_process

    c = tracking_process.client()
    term_id = stopped["term"][3]["run_id"]
    result = cli("train", "--resume", term_id)
    assert result.exit_code == 0, result.output
    assert f"resuming run {term_id}" in result.output
    resumed = c.get_run(term_id)
    assert resumed.info.status == "FINISHED" and resumed.data.tags["dlexp.resumed"] == "1"
    assert sorted(m.step for m in c.get_metric_history(term_id, "epoch/dev_error")) == list(range(1, 13))
    term = runs_json()[term_id]
    assert term["errors"] == reference["errors"], (term, reference)
    assert term["verdict"] == reference["verdict"]


@pytest.mark.slow
def test_same_seed_same_errors(reference):
    result = cli("train", *LONGER, "tracking.run_name=ref2", "trainer.deterministic=true")
    assert result.exit_code == 0, result.output
    again = {r["run_name"]: r for r in runs_json().values()}["ref2"]
    assert again["errors"] == reference["errors"] and again["verdict"] == reference["verdict"]


@pytest.mark.slow
def test_tampered_checkpoint_refused_before_the_run_is_touched(stopped):
    from dlexp.tracking import client as tracking_process

    c = tracking_process.client()
    int_id = stopped["int"][3]["run_id"]
    ckpt = Path(c.get_run(int_id).data.tags["dlexp.workdir"]) / "checkpoints/last.ckpt"

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    import torch

    torch.save({"state_dict": Evil()}, ckpt)
    line = one_line_error(cli("train", "--resume", int_id), 1)
    assert "refusing checkpoint" in line
    assert not Path("pwned").exists()
    assert c.get_run(int_id).info.status == "KILLED"


@pytest.mark.slow
def test_resume_with_fewer_epochs_than_done_is_refused(runs_dir):
    """One line before the run is touched, and it stays FINISHED."""
    result = cli("train", *SMALL, "trainer.max_epochs=3")
    assert result.exit_code == 0, result.output
    run_id = next(iter(runs_json()))
    line = one_line_error(cli("train", "--resume", run_id, "trainer.max_epochs=1"), 2)
    assert "has already trained" in line and "trainer.max_epochs above" in line
    from dlexp.tracking import client as tracking_process

    assert tracking_process.client().get_run(run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_resume_after_kill9_starts_after_the_last_finished_epoch(runs_dir):
    """The dev error never improves after the first epoch (a learning rate of 1e-12), yet last.ckpt is the last
    epoch that finished: a kill -9 loses only the epoch in flight, and --resume goes on from there (before
    last.ckpt was written every epoch, it went back to epoch 2)."""
    proc = start(LONGER + ["optimizer=sgd", "optimizer.lr=1e-12", "trainer.max_epochs=8", "tracking.run_name=flat"])
    lines = Lines(proc)
    try:
        lines.wait_for("epoch 1/")
        wait_until(lambda: stored_names(["flat"]), "the run in the store")
        lines.wait_for("epoch 3/")  # its checkpoint is written before this line
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = lines.rest()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done = max(int(ln.split()[1].split("/")[0]) for ln in out.splitlines() if ln.startswith("epoch "))
    run_id = next(iter(runs_json()))
    wait_until(lambda: runs_json()[run_id]["status"] == "FAILED", "the run ended FAILED by its tracking process")
    result = cli("train", "--resume", run_id)
    assert result.exit_code == 0, result.output
    resumed = [int(ln.split()[1].split("/")[0]) for ln in result.output.splitlines() if ln.startswith("epoch ")]
    # an epoch's line comes once its checkpoint is written: the kill loses only the epoch after it
    assert resumed[0] == done + 1, (done, result.output)
    assert resumed == list(range(resumed[0], 9))
    from dlexp.tracking import client as tracking_process

    history = tracking_process.client().get_metric_history(run_id, "epoch/dev_error")
    assert sorted(m.step for m in history) == list(range(1, 9))  # each epoch logged once


def test_last_ckpt_is_the_last_epoch_and_best_ckpt_the_best(runs_dir, tmp_path):
    """Three epochs whose dev error never improves after the first: last.ckpt is epoch 3, best.ckpt epoch 1."""
    result = cli("train", *SMALL, "trainer.max_epochs=3", "optimizer=sgd", "optimizer.lr=1e-12")
    assert result.exit_code == 0, result.output
    from dlexp.tracking import client as tracking_process
    from dlexp.training.fit import load_checkpoint

    c = tracking_process.client()
    run_id = next(iter(runs_json()))
    folder = Path(c.download_artifacts(run_id, "checkpoints", str(tmp_path)))
    assert sorted(p.name for p in folder.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert load_checkpoint(folder / "last.ckpt")["epoch"] == 2   # Lightning counts epochs from 0
    assert load_checkpoint(folder / "best.ckpt")["epoch"] == 0


def tracker_pid(runs_dir) -> int | None:
    """The tracking process's pid, from the journal the training process writes before anything else."""
    for path in runs_dir.glob("work/*/journal.jsonl"):
        for line in path.read_text().splitlines():
            if '"tracker"' in line:
                return json.loads(line)["tracker"]
    return None


CRASH = ["data.n_train=600", "data.n_train_dev=100", "data.n_dev=100", "data.batch_size=8", "trainer.max_epochs=3",
         "model.hidden=[16]"]


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["before the run is in the store", "mid-training", "during the final evaluation"])
def test_kill9_of_the_whole_command_leaves_a_failed_run_that_resumes(runs_dir, moment):
    """kill -9 of the training process and of its tracking process together (what an out-of-memory kill or a
    scheduler's does): the next dlexp command finds the run FAILED, even when the tracking process had not
    created it yet (it is recorded from the journal), and --resume finishes it in the same run."""
    # a test split of 300,000 rows: its evaluation, after the last epoch line, lasts long past the kill
    proc = start(CRASH + ["data.n_test=300000" if moment.startswith("during") else "data.n_test=100",
                          "tracking.run_name=crash"])
    lines = Lines(proc)
    try:
        if moment == "before the run is in the store":  # the tracking process is still importing MLflow
            wait_until(lambda: tracker_pid(runs_dir) is not None, "the journal names the tracking process")
            assert not stored_names(["crash"])
        else:
            lines.wait_for("epoch 1/" if moment == "mid-training" else "epoch 3/3")
        tracker = tracker_pid(runs_dir)
        os.killpg(proc.pid, signal.SIGKILL)
        os.kill(tracker, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    runs = {r["run_name"]: r for r in runs_json().values()}
    assert runs["crash"]["status"] == "FAILED", runs
    run_id = runs["crash"]["run_id"]
    assert "no diagnosis" in one_line_error(cli("diagnose", run_id), 3)
    result = cli("train", "--resume", run_id)
    assert result.exit_code == 0, result.output
    assert f"resuming run {run_id} (FAILED)" in result.output
    assert runs_json()[run_id]["status"] == "FINISHED" and len(runs_json()) == 1


def test_tracking_process_ends_the_run_failed_when_training_dies(runs_dir):
    """kill -9 of the training process alone: the tracking process sees its stdin close and ends the run FAILED."""
    from dlexp.tracking import client as tracking_process

    proc = subprocess.Popen([sys.executable, "-m", "dlexp.tracking"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps({"op": "start", "uri": None, "experiment": "dlexp", "pid": 999999,
                                 "params": {"seed": 0}, "tags": {}}) + "\n")
    proc.stdin.flush()
    run_id = json.loads(proc.stdout.readline())["run_id"]
    proc.stdin.close()  # what the training process's death looks like from here
    proc.wait(timeout=60)
    run = tracking_process.client().get_run(run_id)
    assert run.info.status == "FAILED"
    assert "ended before finishing" in run.data.tags["dlexp.error"]


def test_a_ctrl_c_never_reaches_the_tracking_process(runs_dir, tmp_path):
    """A terminal's Ctrl-C goes to its foreground process group. The tracking process runs in its own session,
    so none reaches it, even while it still imports MLflow (training no longer waits for that); and a signal
    sent to it directly is ignored once it runs. Either way it still writes the run it is told to."""
    from dlexp.tracking import client as tracking_process
    from dlexp.tracking.recorder import Recorder

    recorder = Recorder({"uri": None, "experiment": "dlexp", "run_name": "ctrl-c", "params": {}, "tags": {},
                         "files": {}}, log_path=tmp_path / "tracking.log")
    assert os.getpgid(recorder.proc.pid) != os.getpgid(0)
    run_id = recorder.run_id
    recorder.proc.send_signal(signal.SIGINT)
    recorder.finish("KILLED")
    assert recorder.proc.wait(timeout=60) == 0
    assert tracking_process.client().get_run(run_id).info.status == "KILLED"


def test_stale_running_run_shown_failed(runs_dir):
    """A RUNNING run whose recorded pid is gone (or reused: another start time) is FAILED in listing and store."""
    from dlexp.tracking import client as tracking_process

    c = tracking_process.client(create=True)
    exp = tracking_process.experiment_id(c, "dlexp")
    import socket

    dead = c.create_run(exp, tags={"dlexp.host": socket.gethostname(), "dlexp.pid": "999999"}).info.run_id
    reused = c.create_run(exp, tags={"dlexp.host": socket.gethostname(), "dlexp.pid": str(os.getpid()),
                                     "dlexp.pid_start": "1"}).info.run_id
    alive = c.create_run(exp, tags={"dlexp.host": socket.gethostname(), "dlexp.pid": str(os.getpid())}).info.run_id
    elsewhere = c.create_run(exp, tags={"dlexp.host": "another-host", "dlexp.pid": "999999"}).info.run_id
    runs = runs_json()
    assert runs[dead]["status"] == "FAILED" and runs[reused]["status"] == "FAILED"
    assert runs[alive]["status"] == "RUNNING" and runs[elsewhere]["status"] == "RUNNING"
    assert c.get_run(dead).info.status == "FAILED"
    assert "ended without finishing" in c.get_run(dead).data.tags["dlexp.error"]
    line = one_line_error(cli("diagnose", alive), 3)
    assert "still training" in line
    line = one_line_error(cli("train", "--resume", alive), 3)
    assert "still running" in line


# ------------------------------------------------------------------------------------- checkpoints


def test_checkpoint_writes_are_atomic_and_loads_are_weights_only(tmp_path, monkeypatch):
    import torch

    from dlexp.errors import TrainingError
    from dlexp.training.fit import SafeCheckpointIO, load_checkpoint

    io = SafeCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}, "hyper_parameters": {"config": {"seed": 0}}}, path)
    assert load_checkpoint(path)["hyper_parameters"]["config"] == {"seed": 0}

    def dies_mid_write(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(2))  # the old one, whole
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]                 # no temporary left

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"state_dict": Evil()}, path)  # a checkpoint file with code in it
    with pytest.raises(TrainingError, match="refusing checkpoint .*tampered with"):
        load_checkpoint(path)
    path.write_bytes(b"\x00garbage")
    with pytest.raises(TrainingError, match="damaged or not a checkpoint"):
        load_checkpoint(path)


def test_batches_resume_mid_epoch_in_the_same_order():
    import torch

    from dlexp.models.lit import Batches

    x, y = torch.arange(20.0).unsqueeze(1), torch.arange(20)
    epoch = {"n": 1}
    full = [b[1].tolist() for b in Batches(x, y, 3, shuffle=True, seed=7, epoch=lambda: epoch["n"])]
    resumed = Batches(x, y, 3, shuffle=True, seed=7, epoch=lambda: epoch["n"])
    resumed.load_state_dict({"epoch": 1, "position": 2})
    assert [b[1].tolist() for b in resumed] == full[2:]
    assert [b[1].tolist() for b in resumed] == full  # the next pass is whole again


# --------------------------------------------------------------------------------------- divergence


@pytest.mark.slow
def test_divergence_verdict_tag_and_exit_code(runs_dir):
    result = cli("train", *SMALL[:-1], "optimizer=sgd", "optimizer.lr=1e6")  # [128,128]: the loss reaches inf
    assert result.exit_code == EXIT_DIVERGED, result.output
    assert "Traceback" not in result.output and "diverged (non-finite loss at step" in result.output
    from dlexp.tracking import client as tracking_process, runs as tracking_runs

    run = tracking_runs.latest_runs(tracking_process.client(), limit=1)[0]
    assert run.data.tags["dlexp.verdict"] == "diverged"
    assert int(run.data.tags["dlexp.diverged_at"]) >= 0
    result = cli("diagnose", "--json")
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "diverged" and doc["diverged_at"] == int(run.data.tags["dlexp.diverged_at"])


# --------------------------------------------------------------------------------------- concurrency


def test_concurrent_writers_on_a_fresh_store(runs_dir):
    """5 tracking processes (what `dlexp train` starts) create runs on one fresh SQLite store at once, while
    `dlexp runs` reads: no run and no metric lost, one experiment."""
    from dlexp.tracking import client as tracking_process, runs as tracking_runs

    n, epochs = 5, 4
    procs = [subprocess.Popen([sys.executable, "-m", "dlexp.tracking"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    for i, p in enumerate(procs):
        p.stdin.write(json.dumps({"op": "start", "uri": None, "experiment": "dlexp", "pid": os.getpid(),
                                  "run_name": f"w{i}", "params": {"seed": i, "data": {"name": "synthetic"}},
                                  "tags": {}}) + "\n")
        p.stdin.flush()
    reads, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            result = subprocess.run(DLEXP + ["runs", "--json"], capture_output=True, text=True)
            reads.append((result.returncode, result.stderr))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i, p in enumerate(procs):
            for e in range(1, epochs + 1):
                p.stdin.write(json.dumps({"op": "epoch", "epoch": e, "row": {"epoch": e, "train_loss": e + i / 10}})
                              + "\n")
            p.stdin.write(json.dumps({"op": "finish", "status": "FINISHED",
                                      "metrics": {"error/train": 0.1 * i / n}}) + "\n")
            p.stdin.flush()
        replies = [[json.loads(line) for line in p.stdout] for p in procs]
        for p in procs:
            p.wait(timeout=120)
    finally:
        stop.set()
        t.join()
    assert all("error" not in r for rs in replies for r in rs), (replies, [p.stderr.read() for p in procs])
    c = tracking_process.client()
    assert [e.name for e in c.search_experiments()].count("dlexp") == 1  # (and MLflow's own "Default")
    runs = tracking_runs.latest_runs(c, limit=50)
    assert sorted(r.info.run_name for r in runs) == sorted(f"w{i}" for i in range(n))
    for r in runs:
        assert r.info.status == "FINISHED"
        assert len(c.get_metric_history(r.info.run_id, "epoch/train_loss")) == epochs
        assert "error/train" in r.data.metrics
    assert reads and all(code in (0, 3) for code, _ in reads), reads  # 3: no store yet, at the very start
    assert all("Traceback" not in err for _, err in reads)


# ------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("override, words", [
    ("trainer.max_epochs=0", "trainer.max_epochs must be positive"),
    ("trainer.max_epochs=-3", "trainer.max_epochs must be positive"),
    ("data.n_train=-5", "data.n_train must be positive"),
    ("data.batch_size=0", "data.batch_size must be positive"),
    ("model.hidden=[0]", "model.hidden"),
    ("data.n_classes=1", "at least 2"),
    ("trainer.max_epochs=lots", "trainer.max_epochs"),
    ("nonsense.key=1", "nonsense"),
])
def test_bad_config_values(runs_dir, override, words):
    line = one_line_error(cli("train", override), 2)
    assert words in line
    assert not (runs_dir / "mlflow.db").exists() or runs_json() == {}  # nothing started for a bad config


def test_bad_store_and_run_ids(runs_dir, monkeypatch):
    line = one_line_error(cli("runs"), 3)
    assert "no dlexp runs" in line
    runs_dir.mkdir()
    (runs_dir / "mlflow.db").mkdir()
    assert "is a folder" in one_line_error(cli("runs"), 3)
    (runs_dir / "mlflow.db").rmdir()
    (runs_dir / "mlflow.db").write_text("these are my notes, not a database\n")
    assert "not an SQLite database" in one_line_error(cli("diagnose"), 3)
    assert "not an SQLite database" in one_line_error(cli("train", *SMALL), 3)
    (runs_dir / "mlflow.db").write_bytes(b"SQLite format 3\x00" + os.urandom(3000))
    line = one_line_error(cli("runs"), 3)
    assert "cannot open the MLflow store" in line
    monkeypatch.setenv("DLEXP_RUNS_DIR", str(runs_dir.parent / "runs2"))  # MLflow caches the broken engine

    from dlexp.tracking import client as tracking_process

    c = tracking_process.client(create=True)
    exp = tracking_process.experiment_id(c, "dlexp")
    # a dlexp run (its tags say so) that was killed before any error was measured
    rid = c.create_run(exp, tags={"dlexp.overrides": "[]"}).info.run_id
    c.set_terminated(rid, "KILLED")
    line = one_line_error(cli("diagnose", rid), 3)
    assert "has no diagnosis" in line and f"--resume {rid}" in line
    bare = c.create_run(exp).info.run_id  # a run with neither dlexp's tags nor a checkpoint
    c.set_terminated(bare, "KILLED")
    assert "no checkpoint to resume from" in one_line_error(cli("train", "--resume", bare), 3)
    assert "no run with id 'nope'" in one_line_error(cli("diagnose", "nope"), 3)
    assert "no run with id 'nope'" in one_line_error(cli("train", "--resume", "nope"), 3)
    assert "--limit must be positive" in one_line_error(cli("runs", "-n", "0"), 2)
    assert c.get_run(rid).info.status == "KILLED"  # nothing logged was touched by the failures


def test_debug_shows_the_traceback(runs_dir):
    result = CliRunner().invoke(app, ["diagnose", "nope"], env={"DLEXP_DEBUG": "1"})
    assert result.exit_code != 0 and result.exception is not None and not isinstance(result.exception, SystemExit)


# ------------------------------------------------------------------------------------ UI and secrets


def test_ui_loopback_by_default_and_security_kept(runs_dir, monkeypatch):
    from dlexp.tracking import serve

    runs_dir.mkdir()
    (runs_dir / "mlflow.db").touch()
    calls = []  # the server command and its environment, as `dlexp ui` would start it
    monkeypatch.setattr(serve, "serve", lambda cmd, env: calls.append((cmd, env)) or 0)
    monkeypatch.setenv("MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE", "true")
    result = cli("ui")
    assert result.exit_code == 0 and "warning" not in result.output
    cmd, env = calls[-1]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert "--disable-security-middleware" not in cmd and "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE" not in env
    result = cli("ui", "--host", "0.0.0.0")
    assert "warning: serving on 0.0.0.0" in result.output
    assert calls[-1][0][calls[-1][0].index("--host") + 1] == "0.0.0.0"
    assert "between 1 and 65535" in one_line_error(cli("ui", "--port", "0"), 2)


def test_secrets_never_shown(runs_dir, monkeypatch):
    from dlexp.cli import app as typer_app
    from dlexp.training.run import without_secrets

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    result = cli("runs", "--uri", "http://ana:s3cret@127.0.0.1:9")
    one_line_error(result, 3)
    assert "s3cret" not in result.output and "ana:***@" in result.output
    plain = without_secrets({"tracking": {"uri": "postgresql://ana:s3cret@db/mlflow"}})
    assert "s3cret" not in json.dumps(plain)
    assert typer_app.pretty_exceptions_show_locals is False
