"""`dlexp train`: compose the config (Hydra) -> splits -> fit -> four errors -> diagnosis -> print + log.

`main` is a `@hydra.main` function, so `dlexp train` keeps all of Hydra: overrides, `-m` sweeps with any
launcher, `--config-dir`, `--cfg job`. torch and Lightning are imported only once a job runs.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import hydra
from omegaconf import DictConfig, OmegaConf

from dlexp import config as configs
from dlexp.data import load as load_splits
from dlexp.data import save_preprocessing
from dlexp.diagnosis import Report, SplitErrors, diagnose, recommend
from dlexp.errors import DlexpError
from dlexp.recorder import Recorder
from dlexp.store import redact, runs_dir, store_uri

configs.register()

RESULTS: list[Report] = []  # reports of the jobs run in this process, for the command's exit code
JOB_ERRORS: list[DlexpError] = []  # dlexp errors of the jobs run in this process


def train(cfg: DictConfig, overrides: list[str], *, tags: dict | None = None) -> Report:
    """Train one configuration end to end; the run in MLflow ends FINISHED, FAILED or KILLED, never RUNNING.

    `tags` are added to the run's (a seed group or a learning curve sets mlflow.parentRunId).
    """
    configs.check(cfg)
    plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    uri = store_uri(cfg.tracking.uri)
    workdir = runs_dir() / "work" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    recorder = Recorder(
        {
            "uri": uri,
            "experiment": cfg.tracking.experiment,
            "run_name": cfg.tracking.run_name,
            "params": _without_secrets(plain),
            "tags": {"dlexp.overrides": json.dumps(overrides), "dlexp.workdir": str(workdir), **(tags or {})},
            "files": {"config.yaml": OmegaConf.to_yaml(_without_secrets(plain))},
        },
        log_path=workdir / "tracking.log",
    )
    try:
        splits = load_splits(cfg.data, seed=cfg.seed)
        human = configs.human_error(cfg.baseline.human_error, splits.bayes_error, required=splits.needs_human,
                                    unbounded=splits.task == "regression")
        unit = "" if splits.task == "classification" else f" (regression, {splits.metric} in the target's unit)"
        print(f"dlexp: training {cfg.model.name} on {cfg.data.name} "
              f"({splits.sizes()['train']} training examples{unit}); tracking to {redact(uri)}", flush=True)
        for check in splits.checks:
            print(f"dlexp: data check: {check}", flush=True)
        from dlexp import training  # torch + Lightning: only now

        result = training.fit(cfg, splits, workdir=workdir, on_epoch=recorder.epoch)
        tolerance = cfg.diagnosis.tolerance
        if cfg.diagnosis.relative_tolerance is not None:
            tolerance = cfg.diagnosis.relative_tolerance * splits.spread
        diagnosis = diagnose(SplitErrors(human=human, **result.errors), tolerance=tolerance,
                             diverged_at=result.diverged_at, sizes=splits.sizes(),
                             human_range=configs.human_range(cfg.baseline.human_error,
                                                                     unbounded=splits.task == "regression"))
        analysis, artifacts = _error_analysis(splits, result, workdir)
        report = Report(diagnosis, recommend(diagnosis, plain, overrides=overrides),
                        run_id=recorder.run_id, sizes=splits.sizes(), task=splits.task, metric=splits.metric,
                        checks=splits.checks, analysis=analysis)
        artifacts[str(result.checkpoint_dir)] = "checkpoints"
        if save_preprocessing(splits, workdir / "preprocessing"):
            artifacts[str(workdir / "preprocessing")] = "preprocessing"
        metrics = dict(report.metrics(), **{f"data/{k}": v for k, v in splits.stats.items()})
        recorder.finish("FINISHED", metrics=metrics, tags=report.tags(), document=report.document(),
                        history=result.history, artifacts=artifacts, cleanup=[str(workdir)])
        return report
    except KeyboardInterrupt:
        recorder.finish("KILLED", tags={"dlexp.error": "interrupted"})
        raise
    except BaseException as exc:
        reason = str(exc) if isinstance(exc, DlexpError) else f"{type(exc).__name__}: {exc}"
        if not recorder.finished:
            try:
                recorder.finish("FAILED", tags={"dlexp.error": reason[:5000]})
            except DlexpError:
                pass  # the store itself is the problem; the original error says more
        raise


def _error_analysis(splits, result, workdir) -> tuple[dict | None, dict]:
    """Per-class errors, rising classes and the worst dev mistakes (classification only)."""
    if not result.predictions or getattr(splits, "task", "classification") != "classification":
        return None, {}
    from dlexp import analysis

    labels = {name: getattr(splits, name).y for name in result.predictions}
    summary, rows = analysis.analyse(labels, result.predictions, splits.n_classes)
    folder = workdir / "analysis"
    analysis.write_worst(rows, folder / analysis.WORST_CSV)
    summary["worst_dev_csv"] = f"analysis/{analysis.WORST_CSV}"
    return summary, {str(folder): "analysis"}


def _without_secrets(plain: dict) -> dict:
    tracking = dict(plain.get("tracking", {}))
    if tracking.get("uri"):
        tracking["uri"] = redact(tracking["uri"])
    return dict(plain, tracking=tracking)


@hydra.main(config_path="pkg://dlexp.configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> str:
    from hydra.core.hydra_config import HydraConfig

    from dlexp import report as render

    hc = HydraConfig.get()
    # the user's own config folder is part of the command line every next-step command must repeat
    own = [f"--config-dir={src.path}" for src in hc.runtime.config_sources if src.provider == "command-line"]
    overrides = own + list(hc.overrides.task)
    try:
        result = train(cfg, overrides)
    except DlexpError as exc:
        # raised from here, Hydra would first write "Error executing job with overrides: [...]" to stderr;
        # run_hydra raises it once Hydra returns, so the user sees dlexp's one line (a sweep goes on)
        JOB_ERRORS.append(exc)
        return "failed"
    render.diagnosis(result, title=f"{cfg.model.name} on {cfg.data.name}")
    RESULTS.append(result)
    return result.diagnosis.verdict


def run_hydra(argv: list[str]) -> list[Report]:
    """Hand `argv` to Hydra as if it were this program's command line; return the jobs' reports."""
    import sys

    os.environ["HYDRA_FULL_ERROR"] = "1"  # composition errors reach dlexp, which prints one line
    saved = sys.argv
    sys.argv = ["dlexp train", *argv]
    RESULTS.clear()
    JOB_ERRORS.clear()
    try:
        main()
    finally:
        sys.argv = saved
    if JOB_ERRORS:
        raise JOB_ERRORS[0]
    return list(RESULTS)


