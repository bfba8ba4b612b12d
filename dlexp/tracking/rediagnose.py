"""The diagnosis of a stored run: what `dlexp diagnose RUN` prints, rebuilt from what the run logged.

The errors, sizes, intervals of a regression run, seed spread, error analysis and curve come from the run's
metrics and `diagnosis.json`; the config and overrides rebuild the next-step commands. A new human level or
tolerance re-judges the run without retraining. No torch: the diagnosis core is pure.
"""

from __future__ import annotations

from dlexp.diagnosis import DEFAULT_TOLERANCE, Report, SplitErrors, check_error, diagnose, recommend
from dlexp.errors import ConfigError
from dlexp.tracking import runs as tracking_runs


def rediagnose(uri: str | None, run_id: str | None, *, human: float | None = None,
               human_range: tuple[float, float] | None = None,
               tolerance: float | None = None) -> tuple[Report, str | None]:
    """The run's report (the latest run's when `run_id` is None) and a title ("mlp on synthetic").

    `human` (and a `human_range` around it) replaces the run's human level; `tolerance` its tolerance.
    """
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
                              overrides=run["overrides"], source=(config.get("data") or {}).get("name"))
    report = Report(d, steps + recommend(d, config or None, overrides=run["overrides"], pretrained=pretrained,
                                         train_size=(doc.get("sizes") or {}).get("train")), run_id=run["run_id"],
                    labels=doc.get("label_issues"),
                    sizes=doc.get("sizes") or {}, task=task, metric=doc.get("metric", "error_rate"),
                    checks=tuple(doc.get("checks") or ()), seeds=seeds or None, analysis=doc.get("analysis"),
                    curve=doc.get("curve"), baseline=baseline, start=doc.get("init_from"))
    data, model = (config.get("data") or {}).get("name"), (config.get("model") or {}).get("name")
    title = f"{model} on {data}" if data and model else None
    if seeds:
        title = f"{title or 'seed group'} · {len(seeds.get('seeds', []))} seeds pooled"
    return report, title
