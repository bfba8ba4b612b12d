"""The user's own model (`model._target_`): an nn.Module, a pytorch_lightning and a `lightning` LightningModule,
from a folder of the user's own (the working directory), given on the command line or in a config file of
theirs (`--config-dir`). Real (tiny) Lightning runs, read back from the real MLflow store."""

from __future__ import annotations

import shlex
import textwrap

import pytest
import yaml
from typer.testing import CliRunner

from dlexp.cli import app

pytestmark = pytest.mark.slow

TINY = ["data.n_train=200", "data.n_train_dev=100", "data.n_dev=100", "data.n_test=100", "trainer.max_epochs=2"]

NET = '''
from torch import nn


class Net(nn.Module):
    """A user's MLP: dlexp passes n_features and n_classes, the config the rest."""

    def __init__(self, n_features, n_classes, width=8, depth=1, p=0.0):
        super().__init__()
        layers, d = [], n_features
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.ReLU(), nn.Dropout(p)]
            d = width
        self.body = nn.Sequential(*layers, nn.Linear(d, n_classes))

    def forward(self, x):
        return self.body(x)


def not_a_module(n_classes):
    return n_classes
'''

# a LightningModule written as lightning-hydra-template writes one: its network, optimizer and scheduler are
# given by the config (nested _target_s, _partial_), its steps log its own metrics, and the scheduler
# monitors one of them; PACKAGE is `pytorch_lightning` or `lightning`
LIT = '''
import torch
import torch.nn.functional as F
from torch import nn
import PACKAGE as L

SEEN = {"training_step": 0, "validation_step": 0, "lr": None}


class Body(nn.Module):
    def __init__(self, n_features, n_classes, width=8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, width), nn.ReLU(), nn.Linear(width, n_classes))

    def forward(self, x):
        return self.net(x)


class LitNet(L.LightningModule):
    def __init__(self, net, optimizer, scheduler):
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net"])
        self.net = net

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        SEEN["training_step"] += 1
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return {"loss": loss}

    def validation_step(self, batch, batch_idx):
        SEEN["validation_step"] += 1
        x, y = batch
        self.log("val/loss", F.cross_entropy(self(x), y), on_epoch=True)

    def on_train_end(self):
        SEEN["lr"] = self.trainer.optimizers[0].param_groups[0]["lr"]

    def configure_optimizers(self):
        optimizer = self.hparams.optimizer(params=self.parameters())
        scheduler = self.hparams.scheduler(optimizer=optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch"}}
'''

LIT_CONFIG = {
    "_target_": "MODULE.LitNet",
    "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.01, "weight_decay": 0.0},
    # never "better" by 10 nats: the learning rate halves after every epoch but the first
    "scheduler": {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau", "_partial_": True, "mode": "min",
                  "factor": 0.5, "patience": 0, "threshold": 10.0, "threshold_mode": "abs"},
    "net": {"_target_": "MODULE.Body", "width": 8},  # n_features and n_classes: given by dlexp
    "knobs": {"width": ["net.width"], "lr": "optimizer.lr"},
}


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def runs_in(runs):
    """The store's client and every run it holds."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{runs}/mlflow.db")
    return client, client.search_runs([e.experiment_id for e in client.search_experiments()])


def only_run(runs):
    client, (run,) = runs_in(runs)
    return client, run


def steps(output: str) -> list[list[str]]:
    """The overrides of each next-step command printed."""
    return [shlex.split(ln.split("$ ", 1)[1])[2:] for ln in output.splitlines() if "$ dlexp train" in ln]


def assert_finished_with_four_errors(runs, name: str):
    client, run = only_run(runs)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"{name} · synthetic"
    for split in ("train", "train_dev", "dev", "test"):
        assert 0 <= run.data.metrics[f"error/{split}"] <= 1
    for curve in ("epoch/dev_error", "epoch/train_loss"):  # one point per epoch
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, curve)) == [1, 2], curve
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
    assert "checkpoints/last.ckpt" in artifacts  # best.ckpt too, unless the last epoch was the best (one file)
    return client, run


def test_a_users_module_from_the_working_directory(runs_dir):
    (runs_dir.parent / "mynet.py").write_text(NET)  # runs_dir's parent is the working directory
    result = invoke("train", "model=custom", "model._target_=mynet.Net", "model.width=4", "model.depth=1",
                    "model.knobs.width=[width]", "model.knobs.depth=depth", "model.knobs.dropout=p", *TINY)
    assert result.exit_code == 0, result.output
    assert "dlexp: training Net on synthetic" in result.output
    _, run = assert_finished_with_four_errors(runs_dir, "Net")
    assert run.data.params["model._target_"] == "mynet.Net"
    # two epochs of 200 rows leave the training error far above the human level: the bias steps, from the knobs
    cmds = steps(result.output)
    assert any("model.width=8" in c for c in cmds), cmds       # bigger model: the width doubled
    assert any("model.depth=2" in c for c in cmds), cmds       # deeper: one more layer
    assert any("trainer.max_epochs=4" in c for c in cmds), cmds
    assert all(c[:2] == ["model=custom", "model._target_=mynet.Net"] for c in cmds if c[0] != "-m")


def test_a_config_file_in_the_users_own_folder(runs_dir):
    root = runs_dir.parent
    (root / "confnet.py").write_text(NET)
    (root / "conf" / "model").mkdir(parents=True)
    (root / "conf" / "model" / "mynet.yaml").write_text(textwrap.dedent("""\
        _target_: confnet.Net
        width: 6
        depth: 2
        p: 0.0
        knobs: {width: [width], depth: depth, dropout: p}
        """))
    result = invoke("train", "--config-dir", "conf", "model=mynet", "model.width=5", *TINY)
    assert result.exit_code == 0, result.output
    _, run = assert_finished_with_four_errors(runs_dir, "Net")
    assert run.data.params["model.width"] == "5"
    cmds = steps(result.output)
    assert cmds and all(c[0].startswith("--config-dir=") and "model=mynet" in c for c in cmds if c[0] != "-m")
    assert any("model.width=10" in c for c in cmds) and any("model.depth=3" in c for c in cmds), cmds


@pytest.mark.parametrize("package", ["pytorch_lightning", "lightning"])
def test_a_lightning_module_keeps_its_own_steps_optimizer_and_scheduler(runs_dir, package):
    import importlib

    module = f"lit_{package}"
    root = runs_dir.parent
    (root / f"{module}.py").write_text(LIT.replace("PACKAGE", package))
    (root / "conf" / "model").mkdir(parents=True)
    config = yaml.safe_dump(LIT_CONFIG).replace("MODULE", module)
    (root / "conf" / "model" / "lit.yaml").write_text(config)
    result = invoke("train", "--config-dir", "conf", "model=lit", *TINY)
    assert result.exit_code == 0, result.output
    assert_finished_with_four_errors(runs_dir, "LitNet")
    seen = importlib.import_module(module).SEEN
    assert seen["training_step"] > 0 and seen["validation_step"] > 0  # its own steps ran
    # its scheduler stepped on the metric its validation_step logged: after epoch 1 it set its best, after
    # epoch 2 (not better by 10) it halved the learning rate
    assert seen["lr"] == pytest.approx(0.005)
    cmds = steps(result.output)
    assert any("model.net.width=16" in c for c in cmds), cmds  # a nested knob
    # its own optimizer: the learning-rate sweep changes its key, not dlexp's unused optimizer.lr
    assert any(o.startswith("model.optimizer.lr=") for c in cmds for o in c), cmds
    assert not any(o.startswith("optimizer.") for c in cmds for o in c), cmds


def test_without_knobs_the_model_independent_steps_still_come(runs_dir):
    (runs_dir.parent / "bare.py").write_text(NET)
    result = invoke("train", "model=custom", "model._target_=bare.Net", *TINY)
    assert result.exit_code == 0, result.output
    assert "Bigger model: more units or layers" in result.output  # no command: dlexp cannot tell which key
    cmds = steps(result.output)
    assert any("trainer.max_epochs=4" in c for c in cmds), cmds
    assert any(o.startswith("optimizer.lr=") for c in cmds for o in c), cmds
    assert not any(o.startswith("model.") and o != "model._target_=bare.Net" for c in cmds for o in c), cmds


@pytest.mark.parametrize("override, line", [
    ("model._target_=badnet.Nett", "model._target_ 'badnet.Nett' cannot be imported: badnet has no 'Nett'"),
    ("model._target_=nomodule.Net", "model._target_ 'nomodule.Net' cannot be imported: No module named 'nomodule'"),
    ("model.widht=3", "badnet.Net() got an unexpected argument 'widht'"),
    ("model._target_=badnet.not_a_module", "badnet.not_a_module() returned int, not a torch nn.Module"),
])
def test_a_bad_model_is_one_line_and_no_run_is_left_running(runs_dir, override, line):
    (runs_dir.parent / "badnet.py").write_text(NET)
    args = ["model=custom", "model._target_=badnet.Net", override, *TINY]
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"dlexp: error: {line}"), result.stderr
    assert "Traceback" not in result.output
    if "cannot be imported" in line:  # found out before a run is opened: the store holds no run for it
        assert not (runs_dir / "mlflow.db").exists() or not runs_in(runs_dir)[1]
    elif (runs_dir / "mlflow.db").exists():
        _, run = only_run(runs_dir)
        assert run.info.status == "FAILED"


def test_curve_over_the_model_scales_its_width_knob(runs_dir):
    (runs_dir.parent / "curvenet.py").write_text(NET)
    result = invoke("curve", "--axis", "model", "--points", "2", "--json", "model=custom",
                    "model._target_=curvenet.Net", "model.width=4", "model.knobs.width=[width]", *TINY[:-1],
                    "trainer.max_epochs=1")
    assert result.exit_code == 0, result.output
    import json

    doc = json.loads(result.stdout)
    assert [p["override"] for p in doc["points"]] == ["model.width=4", "model.width=8"]
    assert doc["width_keys"] == ["model.width"]


def test_curve_over_a_model_without_width_knobs_says_so(runs_dir):
    (runs_dir.parent / "flatnet.py").write_text(NET)
    result = CliRunner().invoke(app, ["curve", "--axis", "model", "model=custom", "model._target_=flatnet.Net"])
    assert result.exit_code == 2 and "names none" in result.stderr and "model.knobs.width" in result.stderr


def test_the_recipe_moves_a_users_model_by_its_declared_knobs(runs_dir):
    """`dlexp recipe` on the user's own nn.Module: the bias steps it trains set the keys the model declares as
    knobs (its width), every candidate is the user's model again, and a change that lowers dev is kept."""
    import json

    (runs_dir.parent / "recipenet.py").write_text(NET)
    result = invoke("recipe", "model=custom", "model._target_=recipenet.Net", "model.width=4",
                    "model.knobs.width=[width]", "model.knobs.depth=depth", "model.knobs.dropout=p",
                    "data=digits", "trainer.max_epochs=2", "--budget", "3", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # progress goes to stderr
    assert doc["start"]["verdict"] == "avoidable_bias", doc["start"]
    rows = doc["trail"]
    assert len(rows) == 2 and all(r["problem"] == "avoidable_bias" for r in rows), rows
    # the model's own width knob moves (doubled: 4 -> 8, alone or in the bold step), never a built-in model's key
    assert any("model.width=8" in r["overrides"] for r in rows), rows
    assert not any(o.startswith("model.hidden") for r in rows for o in r["overrides"]), rows
    assert all(shlex.split(r["command"])[2:4] == ["model=custom", "model._target_=recipenet.Net"] for r in rows)
    assert doc["accepted"] == 1 and doc["final"]["run_id"] != doc["start"]["run_id"], [
        (r["action"], r["dev_error"], r["reason"]) for r in rows]
    assert doc["final"]["errors"]["dev"] < doc["start"]["errors"]["dev"]


@pytest.mark.parametrize("command", ["recipe", "curve"])
def test_a_config_folder_that_does_not_exist_is_one_line_and_no_run(runs_dir, command):
    result = invoke(command, "--config-dir", "nonesuch", "model=mynet", "--budget" if command == "recipe" else "--points",
                    "2")
    assert result.exit_code == 2, result.output
    assert "--config-dir" in result.output and "nonesuch is not a folder" in result.output, result.output
    assert "Traceback" not in result.output and "unknown option" not in result.output
    assert not (runs_dir / "mlflow.db").exists() or not runs_in(runs_dir)[1]


@pytest.mark.parametrize("flag", [["--config-dir", "conf"], ["--config-dir=conf"]])
def test_the_recipe_on_a_model_from_the_users_own_config_folder(runs_dir, flag):
    """`dlexp recipe --config-dir conf model=mynet`: the start run and every candidate compose from the user's
    folder (the flag goes to Hydra once, not into each job's overrides)."""
    import json

    root = runs_dir.parent
    (root / "cdnet.py").write_text(NET)
    (root / "conf" / "model").mkdir(parents=True)
    (root / "conf" / "model" / "mynet.yaml").write_text("_target_: cdnet.Net\nwidth: 4\nknobs: {width: [width]}\n")
    result = invoke("recipe", *flag, "model=mynet", "data=digits", "trainer.max_epochs=2", "--budget", "2",
                    "--candidates", "1", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (row,) = doc["trail"]
    assert row["run_id"] and row["dev_error"] is not None, row
    assert "model.width=8" in row["overrides"], row
    _, runs = runs_in(runs_dir)
    trained = [r for r in runs if r.data.params.get("model._target_")]
    assert len(trained) == 2 and {r.data.params["model._target_"] for r in trained} == {"cdnet.Net"}
