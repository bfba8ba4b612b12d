"""`hydra/sweeper=dlexp_jobs hydra.sweeper.jobs_file=JOBS.json`: one job per override list in the file.

Hydra's basic sweeper runs the cartesian product of comma-separated values; seed groups, learning curves and
the candidates of a recipe round are lists of unrelated override sets instead (`model.hidden=[256,256]` for
one job, `trainer.max_epochs=40` for the next). The jobs go to the configured launcher in one batch, so
`hydra/launcher=joblib` runs them in parallel.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


@dataclass
class JobsSweeperConf:
    _target_: str = "hydra_plugins.dlexp_sweeper.jobs_sweeper.JobsSweeper"
    jobs_file: Optional[str] = None  # a JSON list of override lists


ConfigStore.instance().store(group="hydra/sweeper", name="dlexp_jobs", node=JobsSweeperConf, provider="dlexp")


class JobsSweeper(Sweeper):
    def __init__(self, jobs_file: Optional[str] = None):
        self.jobs_file = jobs_file
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        if not self.jobs_file:
            raise ValueError("hydra/sweeper=dlexp_jobs needs hydra.sweeper.jobs_file")
        jobs: Sequence[Sequence[str]] = json.loads(Path(self.jobs_file).read_text())
        parser = OverridesParser.create()
        parser.parse_overrides(list(arguments))  # the common overrides must parse; no sweeps among them
        batch = [list(arguments) + list(job) for job in jobs]
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        self.validate_batch_is_legal(batch)
        return self.launcher.launch(batch, initial_job_idx=0)
