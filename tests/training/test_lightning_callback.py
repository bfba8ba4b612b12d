"""`dlexp.lightning.Diagnose` in the user's own Trainer: real Lightning (both packages), real MLflow stores, then
dlexp's commands on the runs it recorded."""

from __future__ import annotations

import importlib
import json

import pytest
import torch
from mlflow.tracking import MlflowClient
from torch.utils.data import DataLoader, TensorDataset
from typer.testing import CliRunner

from dlexp.cli import app
from dlexp.diagnosis import newcombe

pytestmark = pytest.mark.slow


def splits(seed: int = 0):
    """Train and train-dev from one distribution, dev and test shifted: tiny, three classes."""
    def make(n, shift, s):
        g = torch.Generator().manual_seed(s)
        x = torch.randn(n, 6, generator=g) + shift
        return TensorDataset(x, (x[:, 0] + x[:, 1] > 2 * shift).long() + (x[:, 2] > shift + 1).long())

    return {"train": make(240, 0.0, seed), "train_dev": make(80, 0.0, seed + 10), "dev": make(100, 0.5, 20),
            "test": make(100, 0.5, 30)}


def loader(ds, shuffle=False):
    return DataLoader(ds, batch_size=32, shuffle=shuffle)


def make_module(package: str):
    """The user's own LightningModule, written against `package` (pytorch_lightning or lightning)."""
    L = importlib.import_module(package)

    class Net(L.LightningModule):
        def __init__(self, width: int = 16):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(6, width), torch.nn.ReLU(), torch.nn.Linear(width, 3))

        def forward(self, x):
            return self.body(x)

        def training_step(self, batch, _):
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self(x), y)
            self.log("train_loss", loss, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_acc", (self(x).argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.05)

    return L, Net


def fit(package: str, callback, *, logger=False, width: int = 16, data=None, datamodule=None):
    L, Net = make_module(package)
    torch.manual_seed(0)
    trainer = L.Trainer(max_epochs=2, logger=logger, callbacks=[callback], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    if datamodule is not None:
        trainer.fit(Net(width), datamodule=datamodule)
    else:
        data = data or splits()
        trainer.fit(Net(width), loader(data["train"], shuffle=True), loader(data["dev"]))
    return trainer


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("package", ["pytorch_lightning", "lightning"])
def test_callback_records_into_dlexp_store_and_dlexp_commands_read_the_runs(package, runs_dir, capsys):
    from dlexp.lightning import Diagnose

    data = splits()
    ids = []
    for width in (4, 32):
        callback = Diagnose(human_error=0.01, train_dev=loader(data["train_dev"]), test=loader(data["test"]))
        fit(package, callback, width=width, data=data)
        report = callback.report
        assert report.sizes == {"train": 240, "train_dev": 80, "dev": 100, "test": 100}
        assert report.verdict in {"avoidable_bias", "variance", "data_mismatch", "dev_overfitting", "inconclusive",
                                  "within_tolerance"}
        iv = report.diagnosis.intervals["variance"]
        e = report.diagnosis.errors
        assert iv == pytest.approx(newcombe(e.train_dev, 80, e.train, 240))
        ids.append(report.run_id)
    printed = capsys.readouterr().out
    assert "dlexp diagnosis · Net on dataloaders" in printed and "verdict:" in printed

    client = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db")
    for run_id in ids:
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["dlexp.source"] == "lightning"
        assert {"error/train", "error/train_dev", "error/dev", "error/test", "gap/variance"} <= set(run.data.metrics)
        assert "epoch/train_loss" in run.data.metrics  # the curve, one point per epoch
    # dlexp's commands on those runs
    doc = json.loads(cli("diagnose", ids[0], "--json"))
    assert doc["run_id"] == ids[0] and doc["sizes"]["train_dev"] == 80
    assert doc["errors"]["dev"] == pytest.approx(client.get_run(ids[0]).data.metrics["error/dev"])
    assert all(a["command"] is None for a in doc["actions"])  # the user's script is not a dlexp config
    assert len(doc["analysis"]["per_class"]["dev"]) == 3  # error analysis: per class, as for a dlexp run
    assert {"analysis", "outcomes", "plots", "diagnosis.json"} <= {f.path for f in client.list_artifacts(ids[0])}
    compared = json.loads(cli("compare", ids[0], ids[1], "--json"))
    assert {s["method"] for s in compared["splits"].values()} == {"paired"}  # same examples, same order
    listing = cli("runs")
    assert ids[0] in listing and ids[1] in listing and "Net" in listing
    cli("report", ids[1])
    assert list(runs_dir.parent.glob("dlexp-report-*.html"))


def test_callback_records_into_the_mlflow_loggers_run_with_lightning(runs_dir, tmp_path):
    from lightning.pytorch.loggers import MLFlowLogger

    from dlexp.lightning import Diagnose

    uri = f"sqlite:///{tmp_path}/theirs.db"
    data = splits()
    logger = MLFlowLogger(experiment_name="my-project", tracking_uri=uri)
    callback = Diagnose(human_error=0.01, train_dev=loader(data["train_dev"]), test=loader(data["test"]))
    fit("lightning", callback, logger=logger, data=data)
    run = MlflowClient(uri).get_run(logger.run_id)
    assert callback.report.run_id == logger.run_id
    assert run.info.status == "FINISHED"  # ended by the logger, as without dlexp
    assert "val_acc" in run.data.metrics  # the user's own metrics, beside dlexp's
    assert run.data.metrics["error/test"] == pytest.approx(callback.report.diagnosis.errors.test)
    assert run.data.tags["dlexp.verdict"] == callback.report.verdict
    assert not (runs_dir / "mlflow.db").exists()  # nothing went to dlexp's own store
    doc = json.loads(cli("diagnose", logger.run_id, "--json", "--uri", uri))
    assert doc["verdict"] == callback.report.verdict


def test_without_train_dev_and_with_a_datamodule_the_gap_to_dev_is_one_gap(runs_dir):
    import pytorch_lightning as pl

    from dlexp.lightning import Diagnose

    data = splits()

    class Data(pl.LightningDataModule):
        def train_dataloader(self):
            return loader(data["train"], shuffle=True)

        def val_dataloader(self):
            return loader(data["dev"])

        def test_dataloader(self):
            return loader(data["test"])

    callback = Diagnose()  # no baseline, no train-dev: test comes from the datamodule
    fit("pytorch_lightning", callback, datamodule=Data())
    doc = callback.report.document()
    assert doc["sizes"] == {"train": 240, "train_dev": None, "dev": 100, "test": 100}
    assert set(doc["gaps"]) == {"avoidable_bias", "variance_or_mismatch", "dev_overfitting"}
    run = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db").get_run(callback.report.run_id)
    assert run.info.status == "FINISHED" and run.data.params["data.name"] == "Data"
    again = json.loads(cli("diagnose", callback.report.run_id, "--json"))
    assert again["gaps"] == doc["gaps"]


def test_no_test_split_is_one_clear_error_before_training(runs_dir):
    from dlexp.errors import ConfigError
    from dlexp.lightning import Diagnose

    with pytest.raises(ConfigError, match="Diagnose needs a test split"):
        fit("lightning", Diagnose(human_error=0.01))
    assert not (runs_dir / "mlflow.db").exists()


def test_batches_that_are_not_pairs_end_the_run_failed(runs_dir):
    from dlexp.errors import ConfigError
    from dlexp.lightning import Diagnose

    data = splits()
    triples = DataLoader(TensorDataset(data["test"].tensors[0], data["test"].tensors[1], data["test"].tensors[1]),
                         batch_size=32)
    with pytest.raises(ConfigError, match="the test loader's batches must be \\(x, y\\) pairs"):
        fit("pytorch_lightning", Diagnose(human_error=0.01, test=triples))
    runs = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db").search_runs(
        [e.experiment_id for e in MlflowClient(f"sqlite:///{runs_dir}/mlflow.db").search_experiments()])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "pairs" in runs[0].data.tags["dlexp.error"]


def test_a_bad_human_error_is_refused_at_once():
    from dlexp.errors import ConfigError
    from dlexp.lightning import Diagnose

    with pytest.raises(ConfigError, match="human error must be a number in \\[0, 1\\]"):
        Diagnose(human_error=5)


SCRIPT = '''
import sys
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from dlexp.lightning import Diagnose


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.body(x)

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, _):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(n, seed, shuffle=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16, shuffle=shuffle)


trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    callbacks=[Diagnose(human_error=0.01, train_dev=loader(40, 1), test=loader(40, 2))])
trainer.fit(Net(), loader(120, 0, shuffle=True), loader(40, 3))
print("MLFLOW_LOADED", "mlflow" in sys.modules)
'''


def test_the_callback_in_a_users_script_leaves_mlflow_to_the_tracking_process(runs_dir, dlexp_proc):
    import subprocess
    import sys

    script = runs_dir.parent / "train.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dlexp diagnosis · Net on dataloaders" in proc.stdout and "verdict:" in proc.stdout
    assert "MLFLOW_LOADED False" in proc.stdout
    listing = dlexp_proc("runs")
    assert listing.returncode == 0 and "FINISHED" in listing.stdout and "Net" in listing.stdout
