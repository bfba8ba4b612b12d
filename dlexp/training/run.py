"""`dlexp train`: compose the config (Hydra) -> splits -> fit -> four errors -> diagnosis -> print + log.

`main` is a `@hydra.main` function, so `dlexp train` keeps all of Hydra: overrides, `-m` sweeps with any
launcher, `--config-dir`, `--cfg job`. torch and Lightning are imported only once a job runs.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from dlexp import config as configs
from dlexp.data import load as load_splits
from dlexp.data import custom, save_preprocessing
from dlexp.diagnosis import Report, SplitErrors, diagnose, recommend
from dlexp.errors import ConfigError, DlexpError
from dlexp.targets import importable, locate_all
from dlexp.training.jobs import in_ray_worker
from dlexp.training.signals import Interrupted, Stopper, interruption, process_start
from dlexp.tracking import datasets, outcomes
from dlexp.tracking.recorder import Recorder
from dlexp.tracking.store import flatten, redact, runs_dir, scrub_tree, store_uri

configs.register()


def train(cfg: DictConfig, overrides: list[str], *, tags: dict | None = None, resume: dict | None = None) -> Report:
    """Train one configuration end to end; the run in MLflow ends FINISHED, FAILED or KILLED, never RUNNING.

    `tags` are added to the run's (a seed group or a learning curve sets mlflow.parentRunId); `resume`
    (`tracking.runs.resume_info` plus the checkpoint's config) continues that run from its checkpoint.
    """
    if custom.is_custom(cfg.data):  # the user's own config file may leave dlexp's own data keys out
        custom.complete(cfg.data)
    configs.prepare(cfg)
    plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    uri = store_uri(cfg.tracking.uri)
    # a run's own folder; uuid4 keeps two runs started in the same second apart
    workdir = Path(resume["workdir"]) if resume else \
        runs_dir() / "work" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    if resume and resume.get("config"):
        _warn_config_drift(resume.get("config") or {}, without_secrets(plain), set(resume.get("new_keys", ())))
    importable()  # a misspelt model or data `_target_` is one line before a run is opened, not a FAILED run
    locate_all(plain.get("model"), "model")
    locate_all(plain.get("data"), "data")
    stopper = Stopper().install()
    recorder = Recorder(
        {
            "uri": uri,
            "experiment": cfg.tracking.experiment,
            "run_name": run_name(cfg, tags or {}),
            "resume_run_id": resume["run_id"] if resume else None,
            "params": without_secrets(plain),
            "tags": {"dlexp.overrides": json.dumps(overrides), "dlexp.workdir": str(workdir),
                     "dlexp.pid_start": process_start(os.getpid()) or "", **(tags or {}),
                     **({"dlexp.init_from": str(cfg.model.init_from)} if cfg.model.get("init_from") else {})},
            "files": {"config.yaml": OmegaConf.to_yaml(without_secrets(plain))},
        },
        log_path=workdir / f"tracking-{os.getpid()}.log",
    )
    try:
        init, data_cfg = None, cfg.data
        if cfg.model.get("init_from") and not (resume and resume["checkpoint"]):  # else from its own checkpoint
            from dlexp.tracking.transfer import source

            init = source(uri, str(cfg.model.init_from), workdir / "init_from")
            data_cfg = _shared_tokens(cfg, init)
        if data_cfg.get("exclude_rows"):  # a run id -> the rows it flagged, fetched from the store
            from dlexp.tracking.flagged import resolve

            data_cfg = data_cfg.copy()
            data_cfg.exclude_rows = resolve(uri, str(data_cfg.exclude_rows), workdir / "exclude_rows")
        splits = load_splits(data_cfg, seed=cfg.seed)
        from dlexp.training import baseline as bayes

        human, human_range, baseline = bayes.baseline(cfg.baseline.human_error, splits, seed=cfg.seed)
        unit = {"classification": "", "lm": " (next-token prediction)"}.get(
            splits.task, f" (regression, {splits.metric} in the target's unit)")
        if not in_ray_worker():  # a Ray job prints one line, at its end
            print(f"dlexp: training {cfg.model.name} on {cfg.data.name} "
                  f"({splits.sizes()['train']} training examples{unit}); tracking to {redact(uri)}", flush=True)
        for check in splits.checks:
            print(f"dlexp: data check: {check}", flush=True)
        from dlexp.training import fit as training  # torch + Lightning: only now

        result = training.fit(cfg, splits, workdir=workdir, on_epoch=recorder.epoch, stopper=stopper,
                              resume_from=Path(resume["checkpoint"]) if resume and resume["checkpoint"] else None,
                              init=init)
        if baseline.get("source") == "estimated":  # the network, fitted on train alone, joins the estimate
            human, human_range, baseline = bayes.refine(baseline, splits, result)
        tolerance = cfg.diagnosis.tolerance
        if cfg.diagnosis.relative_tolerance is not None:
            tolerance = cfg.diagnosis.relative_tolerance * splits.spread
        given = None
        if splits.task == "regression" and result.abs_errors:
            # RMSE and MAE have no Wilson interval: a percentile bootstrap over each split's examples
            from dlexp.diagnosis import bootstrap

            given = bootstrap.intervals(result.abs_errors, splits.metric,
                                        human_range if human_range else human, seed=cfg.seed)
        sizes, sampled = scored_sizes(splits, result)
        diagnosis = diagnose(SplitErrors(human=human, **result.errors), tolerance=tolerance,
                             diverged_at=result.diverged_at, sizes=sizes,
                             human_range=human_range, given_intervals=given,
                             human_known=baseline["source"] != "none")
        analysis, artifacts = _error_analysis(splits, result, workdir)
        if result.own_steps:  # a LightningModule's own optimizer: dlexp's optimizer.* steps do not apply
            plain["model"]["knobs"] = dict(plain["model"].get("knobs") or {}, own_optimizer=True)
        actions = recommend(diagnosis, plain, overrides=overrides, train_size=splits.sizes()["train"],
                            pretrained=_pretrained_runs(recorder, plain, diagnosis))
        from dlexp.diagnosis import labels as label_steps
        from dlexp.training import labels as label_issues

        flagged = (label_issues.find(splits, result, workdir, seed=cfg.seed)  # analysis/label_issues.csv
                   if label_issues.wanted(cfg.diagnosis.get("label_issues"), str(cfg.data.name)) else None)
        actions = label_steps.steps(flagged, tolerance=tolerance, run_id=recorder.run_id, overrides=overrides,
                                    source=cfg.data.name, human=human if baseline["source"] != "none" else None) + actions
        if flagged:
            artifacts = artifacts or {str(workdir / "analysis"): "analysis"}
        report = Report(diagnosis, actions, run_id=recorder.run_id, labels=flagged, sizes=sizes, sampled=sampled,
                        task=splits.task, metric=splits.metric, checks=splits.checks, analysis=analysis, baseline=baseline,
                        start=result.start)
        one_checkpoint_file(result.checkpoint_dir)
        artifacts[str(result.checkpoint_dir)] = "checkpoints"
        if save_preprocessing(splits, workdir / "preprocessing"):
            artifacts[str(workdir / "preprocessing")] = "preprocessing"
        kept = outcomes.from_fit(splits, result)  # per-example outcomes, for `dlexp compare` (a few KB)
        if kept is not None:
            outcomes.write(kept, workdir / outcomes.FOLDER)
            artifacts[str(workdir / outcomes.FOLDER)] = outcomes.FOLDER
        metrics = dict(report.metrics(), **{f"data/{k}": v for k, v in splits.stats.items()})
        run_tags = dict(report.tags(), **{"dlexp.device": result.device})  # where it trained: cpu, cuda:0, mps
        if result.diverged_at is not None:
            run_tags["dlexp.diverged_at"] = str(result.diverged_at)
        if result.pruned_at is not None:  # stopped as clearly losing: the epochs it ran of those planned
            run_tags["dlexp.pruned"] = f"{result.pruned_at} of {cfg.trainer.max_epochs}"
        if result.best_epoch is not None:  # early stopping: the epoch whose weights were measured and kept
            run_tags["dlexp.best_epoch"] = str(result.best_epoch)
        inputs = datasets.describe(data_cfg, splits, result.evals, seed=cfg.seed)  # the splits' dataset inputs
        notes = recorder.finish("FINISHED", metrics=metrics, tags=run_tags, document=report.document(),
                                history=result.history, artifacts=artifacts, datasets=inputs,
                                model=_model(cfg, plain, splits, result, workdir), cleanup=[str(workdir)])
        for note in notes:
            print(f"dlexp: {note}", flush=True)
        return report
    except BaseException as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else stopper.signum or interruption(exc)
        if signum is not None:  # whatever exception the signal became on its way up: an interruption
            _end_killed(recorder, workdir, exc, signum)
            run_id = recorder.run_id if recorder.ok else None
            raise Interrupted(signum, checkpoint=getattr(exc, "checkpoint", None), step=getattr(exc, "step", None),
                              run_id=run_id) from None
        reason = str(exc) if isinstance(exc, DlexpError) else f"{type(exc).__name__}: {exc}"
        if not recorder.finished:
            try:
                recorder.finish("FAILED", tags={"dlexp.error": reason[:5000]})
            except DlexpError:
                pass  # the store itself is the problem; the original error says more
        raise
    finally:
        stopper.restore()


def _end_killed(recorder: Recorder, workdir: Path, exc: BaseException, signum: int) -> None:
    """End the run KILLED; its checkpoint stays in the run folder for --resume, and goes to the store as well."""
    reason = str(exc) if isinstance(exc, Interrupted) else str(Interrupted(signum))
    checkpoints = workdir / "checkpoints"
    try:
        recorder.finish("KILLED", tags={"dlexp.error": reason},
                        artifacts={str(checkpoints): "checkpoints"} if checkpoints.is_dir() else {})
    except (DlexpError, KeyboardInterrupt):  # the store's problem, or a second Ctrl-C: the run ends FAILED
        pass


def one_checkpoint_file(checkpoints: Path | None) -> None:
    """When the last epoch was the best, last.ckpt links to best.ckpt: keep one file, last.ckpt, so that the
    store holds the checkpoint once (`--resume` reads last.ckpt; `model.init_from` takes best.ckpt, else
    last.ckpt: the same weights)."""
    if checkpoints is None:
        return
    last, best = checkpoints / "last.ckpt", checkpoints / "best.ckpt"
    if last.is_symlink() and best.is_file() and last.resolve() == best.resolve():
        last.unlink()
        best.rename(last)
    elif last.is_file() and best.is_file() and os.path.samefile(last, best):  # best.ckpt: a hard link to last.ckpt
        best.unlink()


def _model(cfg: DictConfig, plain: dict, splits, result, workdir: Path) -> dict | None:
    """The run's model folder for the tracking process to log as an MLflow model (None: no raw-row form)."""
    if result.net is None:
        return None
    from dlexp.training import export

    folder = workdir / "model"
    spec = export.save(result.net, plain["model"], splits, folder, data_name=str(cfg.data.name))
    if spec is None and getattr(splits, "datasets", None) is not None and not in_ray_worker():
        print(f"dlexp: {export.NOT_LOGGED}", flush=True)  # the user's own Datasets: one line, no model
    return {"folder": str(folder), "spec": spec, "register": cfg.tracking.get("register")} if spec else None


def run_name(cfg: DictConfig, tags: dict) -> str:
    """The run's name in MLflow: `mlp · synthetic`, `mlp · synthetic · bigger model` for a next step
    (`dlexp next`); a group names its children (`seed 2 of 3`); `tracking.run_name` names a run outright."""
    if tags.get("mlflow.runName"):
        return tags["mlflow.runName"]
    if cfg.tracking.run_name:
        return cfg.tracking.run_name
    from dlexp.diagnosis.actions import label

    name = f"{cfg.model.name} · {cfg.data.name}"
    return f"{name} · {label(tags['dlexp.action'])}" if tags.get("dlexp.action") else name


def _pretrained_runs(recorder: Recorder, plain: dict, diagnosis) -> list[dict]:
    """Runs in the store this one could start from, looked up only when variance or data mismatch is a
    problem (the diagnosis then proposes the first), by the tracking process (this one never loads MLflow)."""
    from dlexp.tracking.transfer import searches

    if not {"variance", "data_mismatch"} & set(diagnosis.problems) or not searches(plain):
        return []
    try:
        return recorder.compatible_runs(plain)
    except DlexpError:  # a suggestion is never worth failing a finished run for
        return []


def _shared_tokens(cfg: DictConfig, init: dict):
    """The data config that reads tokens with the ids the source run learned: its tokenizer, for data=text.

    A run over text starts only from a text run (whose tokenizer comes along); a tokenizer given with
    data.tokenizer_path must be that same one.
    """
    rid, text = init["run_id"], cfg.data.name == "text"
    if init["tokenizer"] and not text:
        raise ConfigError(f"model.init_from={rid}: that run read text through its own tokenizer; the token ids of "
                          f"data={cfg.data.name} mean other things to its weights")
    if not text:
        return cfg.data
    if not init["tokenizer"]:
        raise ConfigError(f"model.init_from={rid}: that run (data={init['data']}) kept no tokenizer, so its token "
                          "ids mean nothing to data=text; start from a data=text run")
    from dlexp.data.text import fingerprint, load_tokenizer

    if cfg.data.tokenizer_path:
        if fingerprint(load_tokenizer(cfg.data.tokenizer_path)) != fingerprint(load_tokenizer(init["tokenizer"])):
            raise ConfigError(f"data.tokenizer_path is not the tokenizer of run {rid}, so token ids would mean other "
                              "things to its weights; leave data.tokenizer_path unset to reuse the run's")
        return cfg.data
    data = cfg.data.copy()
    data.tokenizer_path = str(init["tokenizer"])
    init["tokenizer_reused"] = True
    return data


def _warn_config_drift(stored: dict, now: dict, overridden: set[str]) -> None:
    """A resumed run whose config files changed since: say which keys differ from the checkpoint's config."""
    a, b = flatten(stored), flatten(now)
    drift = sorted(k for k in a.keys() | b.keys()
                   if a.get(k) != b.get(k) and not any(k == o or k.startswith(o + ".") for o in overridden))
    if drift:
        print(f"dlexp: warning: the config differs from the run's checkpoint in {', '.join(drift[:10])} "
              "(changed config files?); override them to keep the run's values", file=sys.stderr, flush=True)


def scored_sizes(splits, result) -> tuple[dict[str, int], dict[str, int] | None]:
    """(examples scored per split: the intervals' n, {split: its full size} for the splits scored on a sample
    (`diagnosis.max_eval_examples`) or None)."""
    evals = result.evals or {}
    sizes = {name: e.n for name, e in evals.items()} if evals else splits.sizes()
    sampled = {name: e.total for name, e in evals.items() if e.total is not None}
    return sizes, sampled or None


def _error_analysis(splits, result, workdir) -> tuple[dict | None, dict]:
    """Per-class errors, rising classes and the worst dev mistakes (classification only), from the eval pass."""
    if not result.predictions or getattr(splits, "task", "classification") != "classification":
        return None, {}
    from dlexp.diagnosis import analysis

    evals = result.evals or {}
    labels = {name: evals[name].labels if name in evals else getattr(splits, name).y for name in result.predictions}
    summary, rows = analysis.analyse(labels, result.predictions, splits.n_classes)
    scored = evals["dev"].rows if "dev" in evals else None
    if scored is not None:  # a sample was scored: the rows of the dev split itself
        for r in rows:
            r["row"] = int(scored[r["row"]])
    folder = workdir / "analysis"
    analysis.write_worst(rows, folder / analysis.WORST_CSV)
    summary["worst_dev_csv"] = f"analysis/{analysis.WORST_CSV}"
    return summary, {str(folder): "analysis"}


def without_secrets(plain: dict) -> dict:
    """The config as a run stores it: every URL's password masked (tracking.uri, data.url, ...)."""
    return scrub_tree(plain)


@hydra.main(config_path="pkg://dlexp.configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> str:
    """One Hydra job: train, print the diagnosis, hand the result to the command (`launch`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from dlexp.render import terminal as render
    from dlexp.training import jobs

    hc = HydraConfig.get()
    # the user's own config folder is part of the command line every next-step command must repeat
    own = [f"--config-dir={src.path}" for src in hc.runtime.config_sources if src.provider == "command-line"]
    overrides = own + list(hc.overrides.task)
    num = hc.job.num if hc.mode == RunMode.MULTIRUN else 0
    sweep_dir = hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None
    if jobs.interrupted():
        return "skipped"  # a sweep stops at the first Ctrl-C / SIGTERM
    ctx = jobs.context(num)
    try:
        report = train(cfg, overrides, tags=ctx.get("tags") or None, resume=ctx.get("resume"))
    except Exception as exc:
        # the run is already ended FAILED or KILLED in the store; the command raises or reports it once
        # Hydra returns (Hydra would print its own banner first), and a sweep goes on with its next job
        from dlexp.tracking.store import scrub

        text = str(exc) if isinstance(exc, DlexpError) else f"{type(exc).__name__}: {exc}"
        line = scrub(text).strip().splitlines()[0] if text.strip() else type(exc).__name__
        run_id = getattr(exc, "run_id", None)
        jobs.save(jobs.JobResult(overrides, error=line, exc=exc, num=num, run_id=run_id, sweep_dir=sweep_dir))
        if hc.mode == RunMode.MULTIRUN:  # say which job, now (it may run in a worker process)
            print(f"dlexp: error: job {' '.join(overrides)}: {line}", file=sys.stderr, flush=True)
        return "failed"
    # a Ray worker's lines reach the terminal prefixed, de-duplicated and late: the command prints its line
    if not ctx.get("quiet") and not jobs.in_ray_worker():
        render.diagnosis(report, title=f"{cfg.model.name} on {cfg.data.name}")
    jobs.save(jobs.JobResult(overrides, report=report, run_id=report.run_id, num=num, sweep_dir=sweep_dir))
    return report.diagnosis.verdict
