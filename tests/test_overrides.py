"""No override is ignored: a key that a built-in section does not know is one line naming it (exit 2); the keys
of a `_target_` section go to its callable."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dlexp.cli import app
from dlexp.errors import ConfigError
from dlexp.training.groups import compose


@pytest.mark.parametrize("override, named", [
    ("+data.foo=3", "'data.foo'"),
    ("+model._target_=mynet.Net", "'model._target_'"),
    ("+model.knobs.size=2", "'model.knobs.size'"),
    ("+trainer.foo=1", "'trainer.foo'"),
    ("+foo=1", "'foo'"),
])
def test_an_added_key_unknown_to_a_built_in_section_is_one_line(runs_dir, override, named):
    result = CliRunner().invoke(app, ["train", override])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("dlexp: error: unknown config key") and named in lines[0], lines
    assert not (runs_dir / "mlflow.db").exists()  # refused before any run exists


def test_a_target_on_a_built_in_model_says_how_to_bring_ones_own():
    with pytest.raises(ConfigError, match="model=custom model._target_="):
        compose(["+model._target_=mynet.Net"])


def test_a_target_section_takes_any_key_without_a_plus():
    cfg = compose(["model=custom", "model._target_=pkg.mod.Net", "model.width=4", "model.net.size=3"])
    assert (cfg.model.width, cfg.model.net.size, cfg.model.name) == (4, 3, "Net")


def test_model_custom_needs_a_target():
    with pytest.raises(ConfigError, match="model=custom needs model._target_"):
        compose(["model=custom"])
