"""Several optimizer steps per Lightning call, limits counted in steps, mixed precision on CPU."""

from __future__ import annotations

import pytest
import torch

from dlexp.models.lit import Batches

TINY = ["data.n_train=300", "data.n_train_dev=50", "data.n_dev=50", "data.n_test=50", "data.batch_size=16",
        "model.hidden=[16]", "trainer.max_epochs=2", "trainer.accelerator=cpu", "trainer.deterministic=true"]


def test_batches_in_chunks_are_the_same_batches_and_resume_in_batches():
    x, y = torch.arange(23.0).unsqueeze(1), torch.arange(23)
    one = [b[1].tolist() for b in Batches(x, y, 3, shuffle=True, seed=7, epoch=lambda: 1)]
    chunked = Batches(x, y, 3, shuffle=True, seed=7, epoch=lambda: 1, steps=3)
    chunks = [b[1].tolist() for b in chunked]
    assert len(chunked) == len(chunks) == 3 and chunked.batches() == len(one) == 8
    assert sum(chunks, []) == sum(one, [])                       # the same rows, in the same order
    assert chunks[0] == sum(one[:3], [])                         # a chunk = 3 consecutive mini-batches
    # two chunks done: the checkpoint says 6 mini-batches, and a resume (even one step a call) goes on there
    done = Batches(x, y, 3, shuffle=True, seed=7, epoch=lambda: 1, position=lambda: 2, steps=3)
    assert done.state_dict() == {"epoch": 1, "position": 6}
    resumed = Batches(x, y, 3, shuffle=True, seed=7, epoch=lambda: 1)
    resumed.load_state_dict(done.state_dict())
    assert [b[1].tolist() for b in resumed] == one[6:]
    limited = Batches(x, y, 3, shuffle=True, seed=7, epoch=lambda: 1, steps=2, limit=5)
    assert len(limited) == 3 and sum((b[1].tolist() for b in limited), []) == sum(one[:5], [])


def _fit(tmp_path, overrides):
    from dlexp.data import load
    from dlexp.training import fit
    from dlexp.training.groups import compose

    cfg = compose(TINY + overrides)
    return fit.fit(cfg, load(cfg.data, seed=cfg.seed), workdir=tmp_path / "_".join(overrides or ["base"]))


@pytest.mark.slow
def test_steps_per_call_trains_the_same_model(runs_dir, tmp_path):
    """One optimizer step per Lightning call or several: the same mini-batches in the same order, so the
    same weights and errors; the history counts optimizer steps either way, and max_steps / a count of
    limit_train_batches count mini-batches."""
    one = _fit(tmp_path, ["trainer.steps_per_call=1"])
    many = _fit(tmp_path, ["trainer.steps_per_call=5"])
    default = _fit(tmp_path, [])                         # 256 rows a call at batch 16: 16 steps a call
    assert one.errors == many.errors == default.errors
    assert [r["step"] for r in one.history] == [r["step"] for r in many.history] == [19, 38]
    assert [r["train_loss"] for r in one.history] == pytest.approx([r["train_loss"] for r in many.history])
    capped = _fit(tmp_path, ["trainer.max_steps=7", "trainer.steps_per_call=5"])
    assert [r["step"] for r in capped.history] == [7]
    limited = _fit(tmp_path, ["trainer.limit_train_batches=4", "trainer.steps_per_call=3"])
    assert [r["step"] for r in limited.history] == [4, 8]


@pytest.mark.slow
def test_plain_steps_skip_lightnings_wrappers_and_train_the_same_model(runs_dir, tmp_path):
    """On one device in full precision, backward and the optimizer step run as in a bare loop; with gradient
    clipping (here a bound no gradient reaches) or mixed precision they go through Lightning's wrappers. Both
    give the same weights, and global_step counts the same optimizer steps."""
    from dlexp.training import fit

    seen = []
    original = fit.Classifier._plain_steps

    def spy(self, opt):
        seen.append(original(self, opt))
        return seen[-1]

    fit.Classifier._plain_steps = spy
    try:
        plain = _fit(tmp_path, [])
        wrapped = _fit(tmp_path, ["optimizer.grad_clip=1e9"])
        _fit(tmp_path, ["trainer.precision=bf16-mixed", "trainer.max_epochs=1"])
    finally:
        fit.Classifier._plain_steps = original
    assert seen == [True, False, False]
    assert plain.errors == wrapped.errors
    assert [r["step"] for r in plain.history] == [r["step"] for r in wrapped.history] == [19, 38]
    assert [r["train_loss"] for r in plain.history] == pytest.approx([r["train_loss"] for r in wrapped.history])


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_on_cpu(runs_dir, tmp_path, capsys, precision):
    """bf16-mixed trains on CPU; 16-mixed has no CPU kernels: one line says so, and the run trains in bf16."""
    result = _fit(tmp_path, [f"trainer.precision={precision}", "trainer.max_epochs=1"])
    assert set(result.errors) == {"train", "train_dev", "dev", "test"}
    assert all(0 <= e <= 1 for e in result.errors.values())
    err = capsys.readouterr().err
    notes = [ln for ln in err.splitlines() if ln.startswith("dlexp: note: trainer.precision=")]
    if precision == "16-mixed":
        assert len(notes) == 1 and "needs a GPU" in notes[0] and "bf16-mixed" in notes[0], err
        assert "AMP with fp16" not in err
    else:
        assert not notes, err


# ------------------------------------------------------------------- groups and curves through Hydra's launcher

GROUP = ["data.n_train=300", "data.n_train_dev=100", "data.n_dev=100", "data.n_test=100", "trainer.max_epochs=1",
         "model.hidden=[16]"]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


@pytest.mark.slow
def test_a_seed_group_through_joblib_with_a_failing_seed_exits_non_zero_naming_it(runs_dir, dlexp_proc):
    """The seeds run as one job list through the joblib launcher; one seed's run fails (a seed numpy
    refuses), the other still finishes under the parent, the command ends non-zero with one line naming
    the failed seed, and the parent run is FAILED."""
    result = dlexp_proc("train", *GROUP, *JOBLIB, "seeds=[0,-1]")
    assert result.returncode != 0, result.stdout
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("dlexp: error:")]
    assert lines and "1 of 2 seed runs failed: seed=-1" in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    from dlexp.tracking import runs as tracking_runs

    parent = next(r for r in tracking_runs.list_runs(None) if r["run_name"].endswith("2 seeds"))
    assert parent["status"] == "FAILED"
    children = tracking_runs.child_runs(None, parent["run_id"])
    assert sorted(c["status"] for c in children) == ["FAILED", "FINISHED"]


@pytest.mark.slow
def test_a_curve_through_joblib_starts_its_largest_point_first(runs_dir, dlexp_proc):
    """Side by side, the largest point goes first (its worker is busy longest); the points still come back
    in size order, each run tagged with its own size."""
    result = dlexp_proc("curve", *GROUP, "--fractions", "0.25,0.5,1", "--json", *JOBLIB)
    assert result.returncode == 0, result.stderr[-2000:]
    import json

    from mlflow.tracking import MlflowClient

    doc = json.loads(result.stdout[result.stdout.index("{\n"):])
    assert [p["n_train"] for p in doc["points"]] == [75, 150, 300]
    c = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db")
    runs = {p["n_train"]: c.get_run(p["run_id"]) for p in doc["points"]}
    for n, run in runs.items():
        assert run.data.params["data.n_train"] == run.data.tags["dlexp.curve.size"] == str(n)
        assert run.data.tags["mlflow.parentRunId"] == doc["run_id"]
    assert runs[300].info.start_time < runs[75].info.start_time
