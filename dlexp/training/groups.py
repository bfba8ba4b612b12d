"""Groups of runs under one MLflow parent run: seed groups (`dlexp train seeds=3`) and learning curves
(`dlexp curve`).

The points of a group (one per seed, one per size) are one job list through Hydra's launcher
(`training.launch.run_jobs`), as `dlexp train -m` sweeps are: `hydra/launcher=joblib
hydra.launcher.n_jobs=2` runs them in parallel. Each point is a child run tagged with mlflow.parentRunId;
the parent run gets the pooled (seeds) or the reference (curve) diagnosis, so `dlexp diagnose PARENT` and
`dlexp report PARENT` work on the group. A point that fails ends the group FAILED and the command non-zero,
naming the failed points.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import sys
import time
import uuid

from omegaconf import DictConfig, OmegaConf

from dlexp import config as configs
from dlexp.training import run as training_run
from dlexp.training.launch import VALUED
from dlexp.diagnosis import SPLITS, Report, SplitErrors, diagnose, recommend
from dlexp.errors import ConfigError, DlexpError
from dlexp.tracking.recorder import Recorder
from dlexp.tracking.store import runs_dir, store_uri

PARENT = "mlflow.parentRunId"


def _is_hydra_arg(arg: str) -> bool:
    """Hydra's own settings (launcher, sweep folders) and flags: for the launch, not for the job's config."""
    return arg.startswith("-") or arg.lstrip("+~").startswith(("hydra/", "hydra.", "hydra="))


def config_dirs(args: list[str]) -> list[str]:
    """The user's config folders that `--config-dir DIR` (or `--config-dir=DIR`, `-cd DIR`) names.

    >>> config_dirs(["--config-dir", "conf", "model=mynet", "--config-dir=/abs/conf"])
    ['conf', '/abs/conf']
    """
    out = []
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in ("--config-dir", "-cd"):
            out.append(value if eq else (args[i + 1] if i + 1 < len(args) else ""))
    return [d for d in out if d]


def compose(overrides: list[str]) -> DictConfig:
    """The config `dlexp train OVERRIDES` would run, composed with Hydra's compose API (Hydra's own
    settings, such as hydra/launcher=joblib, are left to the launch)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    configs.register()  # the structured-config schemas the config files extend
    GlobalHydra.instance().clear()
    folders = [os.path.abspath(d) for d in config_dirs(overrides)]
    for folder in folders:  # Hydra's compose API would only warn, then miss the user's config options
        if not os.path.isdir(folder):
            raise ConfigError(f"--config-dir {folder} is not a folder; give the folder that holds your own "
                              "config options (model/NAME.yaml, data/NAME.yaml, ...)")
    own = [f"hydra.searchpath=[file://{folder}]" for folder in folders]
    with initialize_config_module("dlexp.configs", version_base="1.3"):
        cfg = hydra_compose("config", overrides=[o for i, o in enumerate(overrides) if not _is_hydra_arg(o)
                                                 and not (i and overrides[i - 1] in VALUED)] + own)
    configs.prepare(cfg)
    return cfg


class Parent:
    """The parent run of a group: opened before the first child, finished with the group's result."""

    def __init__(self, cfg: DictConfig, overrides: list[str], kind: str, name: str, *, tags: dict | None = None):
        plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        self.workdir = runs_dir() / "work" / f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{uuid.uuid4().hex[:8]}"
        from dlexp.training.run import without_secrets

        safe = without_secrets(plain)
        self.recorder = Recorder(
            {
                "uri": store_uri(cfg.tracking.uri),
                "experiment": cfg.tracking.experiment,
                "run_name": cfg.tracking.run_name or f"{training_run.run_name(cfg, tags or {})} · {name}",
                "params": safe,
                "tags": {"dlexp.overrides": json.dumps(overrides), "dlexp.kind": kind, **(tags or {})},
                "files": {"config.yaml": OmegaConf.to_yaml(safe)},
            },
            log_path=self.workdir / "tracking.log",
        )
        self.plain = plain
        if not parallel(overrides):  # the points train in this process: torch and Lightning load meanwhile
            import dlexp.training.fit  # noqa: F401

    @property
    def run_id(self) -> str:
        return self.recorder.run_id

    def finish(self, report: Report, *, tags: dict | None = None, document: dict | None = None) -> None:
        self.recorder.finish("FINISHED", metrics=report.metrics(), tags={**report.tags(), **(tags or {})},
                             document=document or report.document(), history=[], cleanup=[str(self.workdir)])

    def fail(self, exc: BaseException) -> None:
        if self.recorder.finished:
            return
        from dlexp.training.signals import interruption

        status = "KILLED" if interruption(exc) is not None else "FAILED"
        try:
            self.recorder.finish(status, tags={"dlexp.error": f"{type(exc).__name__}: {exc}"[:5000]})
        except DlexpError:
            pass


def parallel(overrides: list[str]) -> bool:
    """Whether the overrides pick a Hydra launcher that runs jobs side by side (joblib, ray, ...)."""
    return any(o.startswith("hydra/launcher=") and o.split("=", 1)[1] != "basic" for o in overrides)


def run_points(overrides: list[str], points: list[list[str]], *, tags: dict, what: str,
               own_tags: list[dict] | None = None, work: list[float] | None = None) -> list[Report]:
    """Each point's overrides (after `overrides`) as one job list through the configured Hydra launcher;
    their reports in point order. `tags` go on every point's run, `own_tags[i]` on point i's (its name,
    its seed or size) from its start. Failed points: the first Ctrl-C / SIGTERM is raised as
    it was, other failures as one error naming every failed point and why.

    `work[i]`: point i's relative cost (a curve's training-set size). A launcher that runs jobs side by side
    gets the largest first, so that its workers, each taking the next job as it frees up, end close together
    (with 2 workers and sizes 1:2:4:8, the largest last would leave one worker alone with it)."""
    from dlexp.training import launch

    order = list(range(len(points)))
    if work is not None and parallel(overrides):
        order.sort(key=lambda i: -work[i])
    launched = launch.run_jobs(list(overrides), jobs=[points[i] for i in order], tags=tags,
                               job_tags=[own_tags[i] for i in order] if own_tags else None)
    results = launched
    if len(launched) == len(points):  # back to point order
        results = [None] * len(points)
        for i, r in zip(order, launched):
            results[i] = r
    failed = [(p, r) for p, r in zip(points, results) if r is not None and not r.ok]
    from dlexp.training.signals import Interrupted, interruption

    # a sweep stops at the first Ctrl-C / SIGTERM (the jobs after it return nothing): raised as it was
    interrupted = next((r.exc for _, r in failed if isinstance(r.exc, Interrupted)), None)
    if interrupted is not None:
        raise interrupted
    if interruption(None) is not None:  # a signal this process handled, whatever the job made of it
        raise Interrupted(interruption(None))
    if len(results) != len(points):
        raise DlexpError(f"{len(points) - len(results)} of {len(points)} {what}s returned no result "
                         "(their job never ran or its process died); see the lines above")
    if failed:
        err = DlexpError(f"{len(failed)} of {len(points)} {what}s failed: "
                         + "; ".join(f"{' '.join(p)}: {r.error}" for p, r in failed))
        err.exit_code = max(getattr(r.exc, "exit_code", 1) for _, r in failed)
        raise err
    return [r.report for r in results]


# ------------------------------------------------------------------------------------------ seeds


def parse_seeds(spec: str, base: int) -> list[int]:
    """`3` -> three seeds from the config's seed on; `[0,5,7]` or `0,5,7` -> those seeds.

    >>> parse_seeds("3", 10), parse_seeds("[0,5,7]", 10)
    ([10, 11, 12], [0, 5, 7])
    """
    text = spec.strip()
    try:
        if re.fullmatch(r"\d+", text):
            count = int(text)
            if count < 1:
                raise ValueError
            return [base + i for i in range(count)]
        seeds = [int(p) for p in text.strip("[]").split(",") if p.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds= takes a count (seeds=3) or a list of distinct seeds (seeds=[0,1,2]), got {spec!r}")
    return seeds


def seed_group(spec: str, overrides: list[str], *, echo=print, tags: dict | None = None) -> Report:
    """One child run per seed; the pooled diagnosis (means, seed spread in the intervals) on the parent.

    `tags` go on the parent run (`dlexp next` marks the group it starts with the run it follows)."""
    cfg = compose(overrides)
    seeds = parse_seeds(spec, int(cfg.seed))
    parent = Parent(cfg, overrides, "seeds", f"{len(seeds)} seeds", tags=tags)
    try:
        echo(f"dlexp: {len(seeds)} seed runs (seed={','.join(map(str, seeds))}) under parent run {parent.run_id}")
        sys.stdout.flush()  # before the jobs' own lines (a launcher's workers write to the same stdout)
        children = run_points(overrides, [[f"seed={s}"] for s in seeds], tags={PARENT: parent.run_id},
                              what="seed run",
                              own_tags=[{"dlexp.seed": str(s), "mlflow.runName": f"seed {i} of {len(seeds)}"}
                                        for i, s in enumerate(seeds, 1)])
        config_overrides = [o for o in overrides if not _is_hydra_arg(o)]
        report = pool(children, seeds, cfg, config_overrides + [f"seeds={spec}"], parent.run_id, parent.plain)
        parent.finish(report, tags={"dlexp.kind": "seeds"})
        return report
    except BaseException as exc:
        parent.fail(exc)
        raise


def pool(children: list[Report], seeds: list[int], cfg, overrides: list[str], run_id: str | None,
         plain: dict | None = None) -> Report:
    """The seed group's report: mean errors, pooled sizes, the seed-to-seed spread in the intervals."""
    per_seed = [c.diagnosis.errors.as_dict() for c in children]
    means = {k: statistics.fmean(e[k] for e in per_seed) for k in per_seed[0]}
    spread = {k: (statistics.stdev(e[k] for e in per_seed) if len(per_seed) > 1 else 0.0) for k in SPLITS}
    sizes = {k: sum(c.sizes.get(k) or 0 for c in children) or None for k in SPLITS}
    diverged = any(c.diagnosis.verdict == "diverged" for c in children)
    first, baseline = children[0], children[0].baseline
    human_range = configs.human_range(cfg.baseline.human_error)
    if (baseline or {}).get("source") == "estimated":  # each seed estimated its own: the mean bracket
        lower, upper = (statistics.fmean(c.baseline[k] for c in children) for k in ("lower", "upper"))
        reference = {k: statistics.fmean(c.baseline["reference"][k] for c in children)
                     for k in baseline["reference"]}
        brackets = {name: [statistics.fmean(c.baseline["brackets"][name][i] for c in children) for i in (0, 1)]
                    for name in baseline.get("brackets") or {}}  # each model's own, averaged the same way
        baseline, human_range = dict(baseline, lower=lower, upper=upper, reference=reference,
                                     **({"brackets": brackets} if brackets else {})), (lower, upper)
    d = diagnose(SplitErrors(**means), tolerance=cfg.diagnosis.tolerance, sizes=sizes,
                 human_range=human_range, spread=spread, n_seeds=len(children), diverged=diverged,
                 human_known=first.diagnosis.human_known)
    group = {"seeds": seeds, "runs": [c.run_id for c in children], "spread": spread, "errors": per_seed,
             "verdicts": [c.diagnosis.verdict for c in children]}
    return Report(d, recommend(d, plain, overrides=overrides), run_id=run_id, sizes=sizes, seeds=group,
                  baseline=baseline)


# ---------------------------------------------------------------------------------- learning curves


def curve_sizes(maximum: int, *, points: int = 5, fractions: list[float] | None = None,
                minimum: int = 20) -> list[int]:
    """Training-set sizes: geometric (halving) up to `maximum`, or `fractions` of it.

    >>> curve_sizes(10000, points=5)
    [625, 1250, 2500, 5000, 10000]
    """
    if fractions is None:
        if points < 2:
            raise ConfigError(f"--points must be at least 2, got {points}")
        fractions = [2.0 ** -(points - 1 - i) for i in range(points)]
    if any(not 0 < f <= 1 for f in fractions):
        raise ConfigError(f"--fractions must be in (0, 1] for the data axis, got {fractions}")
    return sorted({max(minimum, min(maximum, round(f * maximum))) for f in fractions})


def width_factors(*, points: int = 5, fractions: list[float] | None = None) -> list[float]:
    """Width multipliers for the model axis: 1/4 .. 4 around the current width by default.

    >>> width_factors(points=5)
    [0.25, 0.5, 1.0, 2.0, 4.0]
    """
    if fractions is not None:
        if any(f <= 0 for f in fractions):
            raise ConfigError(f"--fractions must be positive width factors for the model axis, got {fractions}")
        return sorted(set(fractions))
    if points < 2:
        raise ConfigError(f"--points must be at least 2, got {points}")
    return [2.0 ** (i - (points - 1) // 2) for i in range(points)]


def curve(overrides: list[str], *, points: int = 5, fractions: list[float] | None = None,
          axis: str = "data", echo=print) -> dict:
    """Train at increasing sizes (data: data.n_train; model: the model's width knobs scaled), each a child run;
    fit a power law to the dev error; log the curve, its plot and the reference diagnosis to the parent."""
    from dlexp.diagnosis import powerlaw

    if axis not in ("data", "model"):
        raise ConfigError(f"--axis must be data or model, got {axis!r}")
    cfg = compose(overrides)
    if axis == "data":
        maximum = cfg.data.get("n_train")
        if maximum is None:  # the whole table (digits): its training split's size
            from dlexp.data import load

            maximum = len(load(cfg.data, seed=cfg.seed).train)
        grid = [(n, [f"data.n_train={n}"], n) for n in curve_sizes(int(maximum), points=points, fractions=fractions)]
    else:
        from dlexp.diagnosis.actions import scaled_widths, width_overrides

        plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        if not scaled_widths(plain, 1.0):
            raise ConfigError(f"--axis model scales the model's width knobs; model={cfg.model.name} names none "
                              "(set model.knobs.width to its width keys, or use model=mlp)")
        grid = []
        for f in width_factors(points=points, fractions=fractions):
            widths = scaled_widths(plain, f)
            size = sum(sum(v) if isinstance(v, list) else v for _, v in widths)
            grid.append((size, width_overrides(widths), f))
        grid = list({size: (size, o, f) for size, o, f in grid}.values())  # distinct widths only
    parent = Parent(cfg, overrides, "curve", f"curve over {axis}")
    try:
        echo(f"dlexp: {len(grid)} curve points ({', '.join(' '.join(extra) for _, extra, _ in grid)}) "
             f"under parent run {parent.run_id}")
        sys.stdout.flush()
        reports = run_points(overrides, [extra for _, extra, _ in grid],
                             tags={PARENT: parent.run_id, "dlexp.curve.axis": axis}, what="curve point",
                             own_tags=[{"dlexp.curve.size": str(size),
                                        "mlflow.runName": f"point {i} of {len(grid)} · {' '.join(extra)}"}
                                       for i, (size, extra, _) in enumerate(grid, 1)],
                             work=[size for size, *_ in grid])
        results = [(size, extra, key, report) for (size, extra, key), report in zip(grid, reports)]
        tolerance = cfg.diagnosis.tolerance
        dev = [r.diagnosis.errors.dev for *_, r in results]
        train_err = [r.diagnosis.errors.train for *_, r in results]
        dev_ci = [r.diagnosis.intervals.get("dev") for *_, r in results]
        verdict = powerlaw.judge([s for s, *_ in results], dev, tolerance=tolerance, what=axis, train=train_err,
                                 human=results[0][3].diagnosis.errors.human,
                                 dev_intervals=dev_ci if all(dev_ci) else None)
        points_doc = []
        for size, extra, key, r in results:
            doc = r.document()
            point = {"run_id": r.run_id, "size": size, "override": " ".join(extra), "errors": doc["errors"],
                     "intervals": doc["intervals"], "verdict": doc["verdict"]}
            point["n_train" if axis == "data" else "width_factor"] = key
            if axis == "model":
                point["hidden_units"] = size
            points_doc.append(point)
        helps_key = "more_data_helps" if axis == "data" else "bigger_model_helps"
        result = {"run_id": parent.run_id, "axis": axis, "points": points_doc,
                  **({"width_keys": [o.split("=", 1)[0] for o in grid[0][1]]} if axis == "model" else {}), helps_key: verdict["helps"],
                  "extrapolation": verdict["extrapolation"], "why": verdict["why"], "fit": verdict["fit"],
                  "check": verdict["check"], "band": verdict["band"],
                  "human": results[0][3].diagnosis.errors.human, "tolerance": tolerance}
        # the parent's own diagnosis: the full-size run (data axis) or the current width (model axis)
        ref = results[-1][3] if axis == "data" else next(
            (r for *_, k, r in results if math.isclose(k, 1.0)), results[-1][3])
        report = Report(ref.diagnosis, ref.actions, run_id=parent.run_id, sizes=ref.sizes, analysis=ref.analysis,
                        curve=result)
        parent.finish(report,
                      tags={"dlexp.kind": "curve", f"dlexp.{helps_key}": str(verdict["helps"]).lower()})
        return result
    except BaseException as exc:
        parent.fail(exc)
        raise
