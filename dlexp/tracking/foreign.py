"""Runs another tool logged (a Lightning script's MLFlowLogger, autologging, any script): diagnosed from the
metrics it named its own way (`dlexp diagnose RUN --metric train=train_acc --metric dev=val_acc ...`).

The figures are the run's last logged values; `--accuracy` turns accuracies into errors. `save` writes the
diagnosis onto that run (metrics error/* and gap/*, tags, its Description, diagnosis.json), after which a plain
`dlexp diagnose RUN` reads it like any dlexp run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from mlflow.entities import Metric, RunTag

from dlexp.diagnosis import SPLITS, Report, SplitErrors, check_error, what_if
from dlexp.errors import ConfigError, StoreError
from dlexp.tracking.client import DESCRIPTION
from dlexp.tracking.runs import FOREIGN_TAG, find_run
from dlexp.tracking.store import scrub

REQUIRED = ("train", "dev", "test")  # train_dev is optional: without it one joint train-to-dev gap


def parse_pairs(specs: Sequence[str], option: str) -> dict[str, str]:
    """['train=train_acc', 'dev=val/acc'] -> {split: text}; one line for a split dlexp does not know.

    >>> parse_pairs(["train=train_acc", "train-dev=td_acc"], "--metric")
    {'train': 'train_acc', 'train_dev': 'td_acc'}
    """
    out = {}
    for spec in specs:
        split, sep, value = spec.partition("=")
        split = split.strip().replace("-", "_")
        if not sep or not value.strip() or split not in SPLITS:
            form, example = ("SPLIT=N", "dev=2000") if option == "--size" else ("SPLIT=NAME", "dev=val_acc")
            raise ConfigError(f"{option} takes {form} with SPLIT one of {', '.join(SPLITS)} "
                              f"(e.g. {option} {example}), got {spec!r}")
        out[split] = value.strip()
    return out


def parse_sizes(specs: Sequence[str]) -> dict[str, int]:
    """['dev=2000'] -> {'dev': 2000}: the examples each split's metric was measured on."""
    sizes = {}
    for split, text in parse_pairs(specs, "--size").items():
        if not text.isdigit() or int(text) <= 0:
            raise ConfigError(f"--size {split}={text}: a split's size is a positive number of examples")
        sizes[split] = int(text)
    return sizes


def foreign_report(uri: str | None, run_id: str | None, metrics: Mapping[str, str], *, accuracy: bool = False,
                   human: float | None = None, human_range: tuple[float, float] | None = None,
                   sizes: Mapping[str, int] | None = None, tolerance: float = 0.01) -> tuple[Report, str]:
    """The diagnosis of a run from its own metric names, and a title (the run's name)."""
    missing = [s for s in REQUIRED if s not in metrics]
    if missing:
        raise ConfigError(f"--metric needs train, dev and test (train_dev if the run has it); missing: "
                          f"{', '.join(f'--metric {s}=NAME' for s in missing)}")
    _, run = find_run(uri, run_id)
    logged = run.data.metrics
    unknown = [name for name in metrics.values() if name not in logged]
    if unknown:
        raise ConfigError(f"run {run.info.run_id} has no metric {', '.join(map(repr, unknown))}; its metrics: "
                          f"{', '.join(sorted(logged)[:30]) or 'none'}")
    errors = {}
    for split in SPLITS:
        if split not in metrics:
            continue
        value = logged[metrics[split]]
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"metric {metrics[split]!r} of run {run.info.run_id} is {value:g}, not a rate in "
                              "[0, 1]; dlexp diagnoses error rates (or accuracies, with --accuracy)")
        errors[split] = round(1.0 - value, 12) if accuracy else value
    for split, value in errors.items():
        check_error(split, value)
    report = what_if(SplitErrors(human=0.0 if human is None else human, train_dev=errors.get("train_dev"),
                                 **{s: errors[s] for s in REQUIRED}),
                     sizes=sizes, tolerance=tolerance, human_range=human_range, human_known=human is not None)
    notes = []
    if not sizes:
        notes.append("No split sizes: no intervals, and each gap is judged on its estimate alone; give the "
                     "examples each metric was measured on (--size dev=N ...) for 95% intervals.")
    if human is None:
        notes.append("Give the human-level error (--human H) to judge avoidable bias.")
    looks = [n for s, n in metrics.items() if "acc" in n.lower()]
    if looks and not accuracy:
        notes.append(f"{', '.join(looks)} look like accuracies: add --accuracy to diagnose their errors (1 - accuracy).")
    source = {"metrics": dict(metrics), "accuracy": accuracy, "run_name": run.info.run_name}
    report = replace(report, run_id=run.info.run_id, source=source,
                     diagnosis=replace(report.diagnosis, notes=report.diagnosis.notes + tuple(notes)),
                     baseline={"source": "given" if human is not None else "none"})
    return report, f"{run.info.run_name or 'run'} · metrics {', '.join(f'{s}={n}' for s, n in metrics.items())}"


def save(uri: str | None, report: Report, title: str | None = None) -> None:
    """Write the diagnosis onto the run it came from: metrics, tags, its Description and diagnosis.json."""
    from dlexp.render import markdown

    c, run = find_run(uri, report.run_id)
    document = report.document()
    tags = dict(report.tags(), **{FOREIGN_TAG: json.dumps(dict(report.source["metrics"]))})
    tags[DESCRIPTION] = markdown.description(document, title=title)
    try:
        now = int(time.time() * 1000)
        c.log_batch(run.info.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in report.metrics().items()],
                    tags=[RunTag(k, scrub(str(v))) for k, v in tags.items()])
        c.log_dict(run.info.run_id, document, "diagnosis.json")
    except Exception as exc:
        why = (scrub(str(exc)).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise StoreError(f"cannot write the diagnosis onto run {run.info.run_id}: {why}") from None
