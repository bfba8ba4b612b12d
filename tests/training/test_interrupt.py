"""Ctrl-C stays Ctrl-C: a SIGINT that lands while Hydra composes the config or sets up the job, while the
config is validated, while the data loads (inside OmegaConf, which re-raises what it catches), while the model
trains, while it is evaluated, or while the run is recorded ends `train`, a sweep, a seed group, a learning
curve and the recipe with exit 130 and one line, and leaves no run RUNNING.

Each signal is real (os.kill of this process) and sent from a known point of the pipeline: an OmegaConf
resolver named in an override (armed by a wrapped function where it must fire later than its first use), or
a wrapped function (dlexp's, or Hydra's config loader). Python runs the handler before the next line, so
where it lands is never luck.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from omegaconf import OmegaConf
from typer.testing import CliRunner

from dlexp.cli import app

TINY = ["data.n_train=200", "data.n_train_dev=100", "data.n_dev=100", "data.n_test=100", "trainer.max_epochs=1",
        "model.hidden=[8]", "data.batch_size=100", "early_stopping.patience=0"]
RESOLVER = "dlexp_test_sigint"


@pytest.fixture
def armed():
    """`${dlexp_test_sigint:VALUE}` in an override: VALUE, and one SIGINT to this process the first time it is
    resolved while armed["on"] is true."""
    state = {"on": True, "sent": 0}

    def resolve(value):
        if state["on"]:
            state["on"] = False
            state["sent"] += 1
            os.kill(os.getpid(), signal.SIGINT)
        return value

    OmegaConf.register_new_resolver(RESOLVER, resolve, replace=True)
    yield state
    OmegaConf.clear_resolver(RESOLVER)


def sigint_before(monkeypatch, owner, name, state, *, when=lambda *a, **k: True):
    """Wrap owner.name: on its first call that `when` accepts, SIGINT to this process, then the call itself."""
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        if state["on"] and when(*args, **kwargs):
            state["on"] = False
            state["sent"] += 1
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)


def moment(name, monkeypatch, state) -> list[str]:
    """Arrange for the SIGINT at `name`; the overrides that carry it."""
    if name == "composition":  # Hydra composing the config from its files and the overrides
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        sigint_before(monkeypatch, ConfigLoaderImpl, "load_configuration", state)
        return []
    if name == "hydra job":  # Hydra resolves hydra.job.env_set as it sets up the job, before dlexp's code runs
        return [f"++hydra.job.env_set.DLEXP_TEST_PROBE=${{{RESOLVER}:1}}"]
    if name == "validation":  # the first read of data.n_train is the config check's
        return [f"data.n_train=${{{RESOLVER}:200}}"]
    state["on"] = False
    if name == "data loading":  # inside OmegaConf, while the synthetic source reads data.task_seed
        from dlexp.data import synthetic

        original = synthetic.build

        def build(cfg, **kwargs):
            state["on"] = True
            return original(cfg, **kwargs)

        monkeypatch.setattr(synthetic, "build", build)
        return [f"data.task_seed=${{{RESOLVER}:0}}"]
    state["on"] = True
    if name == "training":
        from dlexp.models.lit import Classifier

        sigint_before(monkeypatch, Classifier, "training_step", state)
    elif name == "evaluation":
        from dlexp.training import fit

        sigint_before(monkeypatch, fit, "measure", state)  # the eval pass over the four splits
    elif name == "recording":
        from dlexp.tracking.recorder import Recorder

        sigint_before(monkeypatch, Recorder, "finish", state, when=lambda self, status, **_: status == "FINISHED")
    else:
        raise AssertionError(name)
    return []


def stored_runs() -> list[dict]:
    result = CliRunner().invoke(app, ["runs", "--json", "-n", "50"])
    if result.exit_code == 3:  # no store: nothing was started
        return []
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def assert_interrupted(result, state, *, runs_expected: bool):
    assert state["sent"] == 1, "the SIGINT was never sent: the moment was not reached"
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("dlexp: error:")]
    assert errors and all("SIGINT" in ln for ln in errors), result.output
    runs = stored_runs()
    assert all(r["status"] != "RUNNING" for r in runs), runs
    if runs_expected:
        assert runs and any(r["status"] == "KILLED" for r in runs), runs
    return runs


MOMENTS = ["composition", "hydra job", "validation", "data loading", "training", "evaluation", "recording"]


@pytest.mark.slow
@pytest.mark.parametrize("name", MOMENTS)
def test_train_interrupted(name, runs_dir, monkeypatch, armed):
    result = CliRunner().invoke(app, ["train", *TINY, *moment(name, monkeypatch, armed)])
    runs = assert_interrupted(result, armed, runs_expected=name not in ("composition", "hydra job", "validation"))
    if name == "training":  # Lightning stopped at a step boundary and wrote a checkpoint to resume from
        assert "--resume" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("command", ["sweep", "seeds", "curve", "recipe"])
@pytest.mark.parametrize("name", ["composition", "validation", "data loading", "evaluation"])
def test_every_command_stays_interrupted(command, name, runs_dir, monkeypatch, armed):
    args = {"sweep": ["train", "-m", "seed=0,1"], "seeds": ["train", "seeds=2"],
            "curve": ["curve", "--fractions", "0.5,1"], "recipe": ["recipe", "--budget", "2"]}[command]
    result = CliRunner().invoke(app, [*args, *TINY, *moment(name, monkeypatch, armed)])
    runs = assert_interrupted(result, armed, runs_expected=name == "evaluation")
    if command == "sweep":  # the sweep stopped at its first job: the second never started
        assert len(runs) <= 1, runs
