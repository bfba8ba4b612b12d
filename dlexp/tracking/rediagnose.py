"""The diagnosis of a stored run: what `dlexp diagnose RUN` prints, rebuilt from what the run logged.

The errors, sizes, intervals of a regression run, seed spread, error analysis and curve come from the run's
metrics and `diagnosis.json`; the config and overrides rebuild the next-step commands. A new human level or
tolerance re-judges the run without retraining. No torch: the diagnosis core is pure.

`request` is all of `dlexp diagnose`: figures typed in (what-if, which loads no MLflow either), a run another
tool logged (`--metric`, see foreign.py), or a stored run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dlexp.diagnosis import DEFAULT_TOLERANCE, Report, SplitErrors, check_error, diagnose, recommend
from dlexp.errors import ConfigError


def parse_human(text: str | None, *, bounded: bool = True) -> tuple[float | None, tuple[float, float] | None]:
    """--human 0.01 -> (0.01, None); --human 0.008,0.012 (a range: several annotators) -> (0.01, (lo, hi)).

    >>> parse_human("0.008,0.012")
    (0.01, (0.008, 0.012))
    """
    if text is None:
        return None, None
    parts = [p for p in text.strip().strip("[]").replace(" ", ",").split(",") if p]
    try:
        values = [float(p) for p in parts]
        if len(values) not in (1, 2):
            raise ValueError
    except ValueError:
        raise ConfigError(f"--human takes a number (0.01) or a range lo,hi (0.008,0.012), got {text!r}") from None
    for v in values:
        if not bounded:  # a regression run's errors are in the target's unit: checked once the run is read
            if not 0 <= v < float("inf"):
                raise ConfigError(f"--human must be a number >= 0, got {v}")
            continue
        try:
            check_error("human", v)
        except ValueError as exc:
            raise ConfigError(f"--human: {exc}") from None
    if len(values) == 1:
        return values[0], None
    lo, hi = sorted(values)
    return (lo + hi) / 2, (lo, hi)


def request(run_id: str | None, *, human: str | None = None, figures: Mapping[str, float | None] | None = None,
            sizes: Mapping[str, int | None] | None = None, tolerance: float | None = None, uri: str | None = None,
            metrics: Sequence[str] = (), accuracy: bool = False, size: Sequence[str] = (),
            save: bool = False) -> tuple[Report, str | None]:
    """`dlexp diagnose`'s report and title, from its options (`figures`: train, train_dev, dev, test typed in;
    `sizes`: their sizes; `metrics`, `size`: SPLIT=NAME and SPLIT=N of a run another tool logged)."""
    from dlexp.diagnosis import what_if
    from dlexp.tracking.store import require_store

    figures, sizes = figures or {}, sizes or {}
    typed_in = any(v is not None for v in figures.values())
    human_value, human_range = parse_human(human, bounded=typed_in or bool(metrics))
    for name, value in figures.items():
        if value is not None:
            try:
                check_error(name.replace("_", "-"), value)
            except ValueError as exc:
                raise ConfigError(f"--{name.replace('_', '-')}: {exc}") from None
    for name, n in sizes.items():
        if n is not None and n <= 0:
            raise ConfigError(f"--n-{name.replace('_', '-')} must be a positive number of examples, got {n}")
    if tolerance is not None and tolerance < 0:
        raise ConfigError(f"--tolerance must be >= 0, got {tolerance}")
    if save and not metrics:
        raise ConfigError("--save writes the diagnosis of a run another tool logged, with --metric; "
                          "a dlexp run already holds its own")
    if (metrics or size or accuracy) and typed_in:
        raise ConfigError("--metric/--size/--accuracy read a run's metrics; what-if mode takes --train ... instead")
    if typed_in:
        missing = [f"--{k}" for k, v in {"human": human_value, **figures}.items() if v is None and k != "train_dev"]
        if run_id is not None or missing:
            raise ConfigError("what-if mode takes no run id and needs all of --human --train --dev --test, and "
                              f"--train-dev to split the train-to-dev gap (missing: {', '.join(missing) or 'none'})")
        errors = SplitErrors(human=human_value, **figures)
        return what_if(errors, sizes=sizes, tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
                       human_range=human_range), "what-if"
    if any(v is not None for v in sizes.values()):
        raise ConfigError("--n-train/--n-train-dev/--n-dev/--n-test are for what-if mode; a run knows its sizes "
                          "(a run another tool logged: --size dev=N)")
    if (size or accuracy) and not metrics:
        raise ConfigError("--size and --accuracy go with --metric SPLIT=NAME (a run another tool logged)")
    require_store(uri)
    if not metrics:
        return rediagnose(uri, run_id, human=human_value, human_range=human_range, tolerance=tolerance)
    from dlexp.tracking import foreign

    report, title = foreign.foreign_report(
        uri, run_id, foreign.parse_pairs(metrics, "--metric"), accuracy=accuracy, human=human_value,
        human_range=human_range, sizes=foreign.parse_sizes(size),
        tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance)
    if save:
        foreign.save(uri, report, title)
    return report, title


def rediagnose(uri: str | None, run_id: str | None, *, human: float | None = None,
               human_range: tuple[float, float] | None = None,
               tolerance: float | None = None) -> tuple[Report, str | None]:
    """The run's report (the latest run's when `run_id` is None) and a title ("mlp on synthetic").

    `human` (and a `human_range` around it) replaces the run's human level; `tolerance` its tolerance.
    """
    from dlexp.tracking import runs as tracking_runs

    run = tracking_runs.load_run(uri, run_id)
    doc, config = run["document"], run["config"] or {}
    e = run["errors"]
    task = doc.get("task", "classification")
    if human is not None and task == "classification":
        for v in human_range or (human,):  # an error rate: within [0, 1]
            try:
                check_error("human", v)
            except ValueError as exc:
                raise ConfigError(f"--human: {exc}") from None
    baseline = doc.get("baseline")
    if human is None:
        recorded = (doc.get("intervals") or {}).get("human")
        human_range = tuple(recorded) if recorded and recorded[0] != recorded[1] else None
    elif baseline:  # a new human level replaces the run's; the reference model's errors stay worth seeing
        baseline = {"source": "given", **({"reference": baseline["reference"]} if baseline.get("reference") else {})}
    human_known = human is not None or (baseline or {}).get("source") != "none"
    errors = SplitErrors(human=(e["human"] or 0.0) if human is None else human, train=e["train"],
                         train_dev=e["train_dev"], dev=e["dev"], test=e["test"])
    if tolerance is None:  # the tolerance the run was judged with (relative_tolerance already resolved)
        tolerance = doc.get("tolerance", (config.get("diagnosis") or {}).get("tolerance", DEFAULT_TOLERANCE))
    seeds = doc.get("seeds") or {}
    given = None
    if task == "regression":
        # a regression run's intervals are bootstrapped from its examples at training time: reuse them
        # (a new human level moves avoidable_bias, so that one is rebuilt from the train interval)
        skip = {"human"} | ({"avoidable_bias"} if human is not None else set())
        given = {k: v for k, v in (doc.get("intervals") or {}).items() if k not in skip}
    d = diagnose(errors, tolerance=tolerance, diverged_at=doc.get("diverged_at"),
                 diverged=doc.get("verdict") == "diverged", sizes=doc.get("sizes") or {},
                 human_range=human_range, spread=seeds.get("spread"), n_seeds=len(seeds.get("seeds", [])) or 1,
                 given_intervals=given, human_known=human_known)
    pretrained = []
    if {"variance", "data_mismatch"} & set(d.problems) and config:
        from dlexp.tracking.transfer import compatible_runs

        pretrained = compatible_runs(uri, config, exclude=run["run_id"])
    from dlexp.diagnosis import labels as label_steps  # wrong labels: the label steps come first

    steps = label_steps.steps(doc.get("label_issues"), tolerance=tolerance, run_id=run["run_id"],
                              overrides=run["overrides"], source=(config.get("data") or {}).get("name"),
                              human=d.errors.human if d.human_known else None)
    report = Report(d, steps + recommend(d, config or None, overrides=run["overrides"], pretrained=pretrained,
                                         train_size=(doc.get("sizes") or {}).get("train")), run_id=run["run_id"],
                    labels=doc.get("label_issues"),
                    sizes=doc.get("sizes") or {}, task=task, metric=doc.get("metric", "error_rate"),
                    checks=tuple(doc.get("checks") or ()), seeds=seeds or None, analysis=doc.get("analysis"),
                    curve=doc.get("curve"), baseline=baseline, start=doc.get("init_from"), source=doc.get("source"),
                    sampled={k: v["of"] for k, v in (doc.get("sampled") or {}).items()} or None)
    data, model = (config.get("data") or {}).get("name"), (config.get("model") or {}).get("name")
    title = f"{model} on {data}" if data and model else (doc.get("source") or {}).get("run_name")
    if seeds:
        title = f"{title or 'seed group'} · {len(seeds.get('seeds', []))} seeds pooled"
    return report, title
