"""One eval pass over a split, from a DataLoader or in-memory tensors: the same errors, labels and fingerprints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dlexp.models.lit import Objective
from dlexp.tracking.outcomes import fingerprint
from dlexp.training.evaluate import evaluate_arrays, evaluate_loader


def _data(n=103, d=5, k=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g), torch.randint(0, k, (n,), generator=g)


def test_a_loader_and_the_in_memory_pass_agree_and_the_fingerprint_is_the_whole_arrays():
    x, y = _data()
    net = torch.nn.Linear(5, 3)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    a = evaluate_loader(net, loader, objective=Objective(), device="cpu")
    b = evaluate_arrays(net, x, y.numpy(), objective=Objective(), device="cpu",
                        fingerprint=fingerprint(x.numpy(), y.numpy()), batch_size=40)
    wrong = (net(x).argmax(1) != y).float().mean().item()
    assert a.n == b.n == 103 and a.error == pytest.approx(wrong) and b.error == pytest.approx(wrong)
    assert np.array_equal(a.labels, y.numpy()) and np.array_equal(a.predicted, b.predicted)
    assert np.allclose(a.confidence, b.confidence) and a.abs_errors is None
    assert a.fingerprint == b.fingerprint  # batch by batch == the whole arrays: old runs pair with new ones
    shuffled = evaluate_loader(net, DataLoader(TensorDataset(x.flip(0), y.flip(0)), batch_size=16),
                               objective=Objective(), device="cpu")
    assert shuffled.fingerprint != a.fingerprint and shuffled.error == pytest.approx(wrong)


def test_regression_keeps_each_error_signed_and_absolute_in_the_targets_unit_and_max_batches_stops_early():
    x, _ = _data()
    t = x[:, 0] * 3 + 10
    net = torch.nn.Linear(5, 1)
    obj = Objective("regression", "mae", mean=10.0, std=2.0)
    full = evaluate_loader(net, DataLoader(TensorDataset(x, t), batch_size=10), objective=obj, device="cpu")
    signed = (net(x).squeeze(-1) * 2.0 + 10.0 - t).detach().numpy()  # prediction - target
    expected = np.abs(signed)
    assert np.allclose(full.residuals, signed, atol=1e-5)  # the sign: the outlier search reads it
    assert np.allclose(full.abs_errors, expected, atol=1e-5) and full.error == pytest.approx(expected.mean(), rel=1e-5)
    part = evaluate_loader(net, DataLoader(TensorDataset(x, t), batch_size=10), objective=obj, device="cpu",
                           max_batches=3)
    assert part.n == 30 and part.predicted is None
    assert part.fingerprint == fingerprint(x[:30].numpy(), t[:30].numpy())


@pytest.mark.slow
def test_built_in_data_scored_on_a_seeded_sample_says_so(runs_dir):
    import json
    from pathlib import Path

    from mlflow.tracking import MlflowClient
    from typer.testing import CliRunner

    from dlexp.cli import app

    result = CliRunner().invoke(app, ["train", "data.n_train=300", "data.n_train_dev=80", "data.n_dev=80",
                                      "data.n_test=80", "trainer.max_epochs=1", "diagnosis.max_eval_examples=60"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "sampled 60 of 300" in result.output and "sampled 60 of 80" in result.output
    client = MlflowClient(tracking_uri=f"sqlite:///{runs_dir / 'mlflow.db'}")
    run = client.search_runs([e.experiment_id for e in client.search_experiments()])[0]
    doc = json.loads(Path(client.download_artifacts(run.info.run_id, "diagnosis.json")).read_text())
    assert doc["sizes"] == {"train": 60, "train_dev": 60, "dev": 60, "test": 60}
    assert doc["sampled"]["train"] == {"n": 60, "of": 300}
    shown = CliRunner().invoke(app, ["diagnose", run.info.run_id], catch_exceptions=False)
    assert shown.exit_code == 0 and "sampled 60 of 300" in shown.output  # read back from the run
