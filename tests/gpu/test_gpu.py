"""dlexp on a CUDA GPU: picked without being named, data moved once, mixed precision, DDP, a GPU checkpoint
resumed on the CPU, a user's own Dataset through DataLoader workers. Skipped where there is no GPU
(`pytestmark` below); `python benchmarks/device_check.py OUT` runs them on a lent GPU machine."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

NO_GPU = ("no CUDA device here (torch.cuda.is_available() is False); these run on a GPU machine: "
          "python benchmarks/device_check.py OUT")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# skipped, each with the reason, where torch sees no CUDA device: a CPU machine's summary (-ra) counts them
pytestmark = [pytest.mark.gpu, pytest.mark.slow, pytest.mark.skipif(not _cuda(), reason=NO_GPU)]

TINY = ["data.n_train=500", "data.n_train_dev=200", "data.n_dev=200", "data.n_test=200"]
# large enough that the verdict (avoidable bias: a hard task, 5 epochs) does not hang on noise
SIZED = ["data.n_train=4000", "data.n_train_dev=1000", "data.n_dev=1000", "data.n_test=1000", "trainer.max_epochs=5"]
SPLITS = ("train", "train_dev", "dev", "test")


def _runs(runs_dir):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=f"sqlite:///{runs_dir / 'mlflow.db'}")
    return c.search_runs([e.experiment_id for e in c.search_experiments()], order_by=["attributes.start_time DESC"])


def _dlexp(*args):
    return subprocess.run([sys.executable, "-m", "dlexp", *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ))


def _train(runs_dir, *args):
    """`dlexp train ARGS` in a fresh process; the run it finished, read back from the store."""
    done = _dlexp("train", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    run = _runs(runs_dir)[0]
    assert run.info.status == "FINISHED"
    return done, run


@pytest.fixture(scope="module")
def full_precision(module_runs_dir):
    return _train(module_runs_dir, *SIZED)


def test_the_gpu_is_picked_without_being_named(full_precision):
    """trainer.accelerator=auto (the default) trains on the GPU, and the run records where it trained."""
    _, run = full_precision
    assert run.data.params["trainer.accelerator"] == "auto"
    assert run.data.tags["dlexp.device"].startswith("cuda"), run.data.tags["dlexp.device"]


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_gives_the_verdict_of_full_precision(module_runs_dir, full_precision, precision):
    """float16 (with its gradient scaler) and bfloat16 autocast train on the GPU itself, with no fallback
    note, and the diagnosis is that of full precision: the same verdict, each error within noise."""
    _, full = full_precision
    done, mixed = _train(module_runs_dir, *SIZED, f"trainer.precision={precision}")
    assert "dlexp: note: trainer.precision" not in done.stderr
    assert mixed.data.tags["dlexp.device"].startswith("cuda")
    assert mixed.data.tags["dlexp.verdict"] == full.data.tags["dlexp.verdict"] != "diverged"
    for split, n in zip(SPLITS, (4000, 1000, 1000, 1000)):
        a, b = full.data.metrics[f"error/{split}"], mixed.data.metrics[f"error/{split}"]
        p = (a + b) / 2
        noise = 4 * math.sqrt(2 * p * (1 - p) / n) + 0.01  # two binomial errors on n examples, 4 standard errors
        assert abs(a - b) <= noise, (split, a, b, noise)


def test_the_data_moves_to_the_gpu_once(runs_dir, tmp_path):
    """The training and dev splits go to the GPU once for the whole run (not per epoch or batch); every
    training batch is already there."""
    from dlexp.data import load
    from dlexp.models import lit
    from dlexp.training import fit
    from dlexp.training.groups import compose

    moved, batches = [], set()
    tensors, step = lit.InMemoryData._tensors, fit.Classifier.training_step

    def spy_tensors(self, split):
        out = tensors(self, split)
        moved.append((len(split.y), str(out[0].device), str(out[1].device)))
        return out

    def spy_step(self, batch, *args, **kwargs):
        batches.add((str(batch[0].device), str(batch[1].device)))
        return step(self, batch, *args, **kwargs)

    lit.InMemoryData._tensors, fit.Classifier.training_step = spy_tensors, spy_step
    try:
        cfg = compose(TINY + ["trainer.max_epochs=3"])
        result = fit.fit(cfg, load(cfg.data, seed=cfg.seed), workdir=tmp_path / "work")
    finally:
        lit.InMemoryData._tensors, fit.Classifier.training_step = tensors, step
    assert result.device.startswith("cuda") and len(result.history) == 3
    assert [n for n, *_ in moved] == [500, 200]                     # train once, dev once, for 3 epochs
    assert {d for _, *devices in moved for d in devices} == {result.device}
    assert batches == {(result.device, result.device)}


def test_ddp_on_every_gpu_trains_one_run(runs_dir):
    import torch

    n = torch.cuda.device_count()
    if n < 2:
        pytest.skip(f"DDP needs 2 GPUs or more; this machine has {n}")
    done, run = _train(runs_dir, "trainer=ddp", *TINY, "trainer.max_epochs=2")
    assert done.stdout.count("dlexp diagnosis") == 1 and len(_runs(runs_dir)) == 1
    assert run.data.tags["dlexp.device"] == "cuda:0"
    assert run.data.params["trainer.devices"] == "-1"


def test_a_checkpoint_written_on_the_gpu_resumes_on_the_cpu(runs_dir):
    _, first = _train(runs_dir, *TINY, "trainer.max_epochs=2")
    assert first.data.tags["dlexp.device"].startswith("cuda")
    done = _dlexp("train", "--resume", first.info.run_id, "trainer.max_epochs=3", "trainer.accelerator=cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch 3/3" in done.stdout and "epoch 2/3" not in done.stdout
    [run] = _runs(runs_dir)                                          # the same run went on, on the CPU
    assert run.info.status == "FINISHED" and run.data.tags["dlexp.device"] == "cpu"


DATASET = '''
import os

import torch
from torch.utils.data import Dataset, get_worker_info


class Rings(Dataset):
    """Points labelled by their ring; item 0 leaves a mark saying which process read it."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 8, generator=g)
        self.y = (self.x[:, :2].norm(dim=1) * 2).long().clamp(max=3)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        if i == 0:
            info = get_worker_info()
            open(os.path.join("marks", f"{os.getpid()}-{'worker' if info else 'main'}"), "w").close()
        return self.x[i], self.y[i]


def make_data():
    return {"train": Rings(2000, 0), "dev": Rings(400, 1), "test": Rings(400, 2)}
'''


def test_a_users_dataset_goes_through_dataloader_workers_onto_the_gpu(runs_dir, tmp_path):
    """data=custom: the user's own map-style Datasets, read through DataLoader workers (pin_memory on a GPU),
    train on the GPU."""
    from dlexp.training.groups import compose

    (tmp_path / "ringdata.py").write_text(textwrap.dedent(DATASET))
    marks = tmp_path / "marks"  # the working directory (runs_dir): importable, as for a user
    marks.mkdir()
    args = ["data=custom", "data._target_=ringdata.make_data", "data.num_workers=2", "trainer.max_epochs=2"]
    try:
        compose(args)
    except BaseException as exc:  # noqa: BLE001 - any failure to compose means this dlexp has no data=custom
        reason = (str(exc).splitlines() or [""])[0][:200]
        pytest.skip(f"data=custom is not available in this dlexp ({type(exc).__name__}: {reason})")
    _, run = _train(runs_dir, *args)
    assert run.data.tags["dlexp.device"].startswith("cuda")
    assert any(p.name.endswith("-worker") for p in marks.iterdir()), sorted(p.name for p in marks.iterdir())
    doc = json.loads(Path(_download(runs_dir, run, "diagnosis.json")).read_text())
    assert doc["sizes"]["train"] + doc["sizes"]["train_dev"] == 2000 and doc["sizes"]["dev"] == 400


def _download(runs_dir, run, name):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{runs_dir / 'mlflow.db'}").download_artifacts(run.info.run_id, name)
