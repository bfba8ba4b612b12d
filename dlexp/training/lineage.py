"""`dlexp next [RUN_ID] [N]`: run next step N of a stored run's diagnosis, and say whether it helped.

The step is the exact command the diagnosis printed (rebuilt from the stored run, as `dlexp diagnose RUN`
prints it), run in this process through the same Hydra entry as `dlexp train`. The new run is tagged with
the run and the action it follows (`dlexp.follows`, `dlexp.action`), which `dlexp runs` and the MLflow UI
show; once it has ended, it is compared with the run it follows.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from dlexp.diagnosis import Action, Report
from dlexp.errors import ConfigError

FOLLOWS = "dlexp.follows"
ACTION = "dlexp.action"
STEP = "dlexp.step"


@dataclass
class Followed:
    """What `dlexp next` did: the step it ran, and each new run with its comparison."""

    run_id: str                     # the run followed
    title: str | None               # "mlp on synthetic"
    step: int
    action: Action
    runs: list[dict] = field(default_factory=list)  # {"run_id", "report", "comparison", "error", "exc"}


def parse_args(args: list[str]) -> tuple[str | None, int]:
    """`[RUN_ID] [N]` -> (run id or None for the latest run, step N).

    A run id is MLflow's 32 hex characters; one short number alone is the step of the latest run.

    >>> parse_args([]), parse_args(["2"]), parse_args(["3a6eb593", "4"])
    ((None, 1), (None, 2), ('3a6eb593', 4))
    """
    if len(args) > 2:
        raise ConfigError(f"dlexp next takes a run id and a step number, got {len(args)} arguments: "
                          f"{' '.join(args)}")
    run_id, step = None, "1"
    if len(args) == 2:
        run_id, step = args
    elif len(args) == 1:
        if args[0].isdigit() and len(args[0]) < 8:
            step = args[0]
        else:
            run_id = args[0]
    try:
        n = int(step)
    except ValueError:
        raise ConfigError(f"the step must be a number (1 is the first next step), got {step!r}") from None
    return run_id, n


def pick(report: Report, step: int) -> Action:
    """Step `step` (1-based) of the report's next steps, with a command to run."""
    rid, actions = report.run_id, report.actions
    if not actions:
        raise ConfigError(f"run {rid} has no next steps (verdict {report.diagnosis.verdict}); "
                          "nothing to run")
    if not 1 <= step <= len(actions):
        raise ConfigError(f"run {rid} has {len(actions)} next step{'s' if len(actions) > 1 else ''}, "
                          f"so N must be 1 to {len(actions)}, got {step}; `dlexp diagnose {rid}` lists them")
    action = actions[step - 1]
    if not action.command:
        raise ConfigError(f"step {step} of run {rid} ({action.action}) has no command to run: it is done by "
                          "hand (or the run lost its config.yaml); pick a step that shows a `dlexp train` command")
    return action


def argv(command: str) -> list[str]:
    """The arguments of a printed `dlexp train ...` command, as the shell would pass them.

    >>> argv("dlexp train data.n_train=500 'model.hidden=[256,256]'")
    ['data.n_train=500', 'model.hidden=[256,256]']
    """
    parts = shlex.split(command)
    if parts[:2] != ["dlexp", "train"]:
        raise ConfigError(f"a next step runs `dlexp train ...`, not {command!r}")
    return parts[2:]


def follow(uri: str | None, run_id: str | None, step: int, *, echo=print) -> Followed:
    """Run step `step` of the run's diagnosis; compare each new run with the run it follows.

    A failing job is kept as one line in `Followed.runs` (as a sweep keeps it); the command decides the exit.
    """
    from dlexp.tracking.rediagnose import rediagnose

    report, title = rediagnose(uri, run_id)
    action = pick(report, step)
    args = unmasked(argv(action.command), uri, run_id=report.run_id, step=step)
    if uri is not None and not any(a.split("=", 1)[0].lstrip("+") == "tracking.uri" for a in args):
        args.append(f"tracking.uri={uri}")  # train into the store the run was read from
    tags = {FOLLOWS: report.run_id, ACTION: action.action, STEP: str(step)}
    echo(f"dlexp: next step {step} of run {report.run_id}: {action.action}\n$ {action.command}")
    done = Followed(report.run_id, title, step, action)
    seeds = [a for a in args if a.startswith("seeds=")]
    if seeds:  # a seed group, as `dlexp train seeds=N` runs it: the parent run follows
        from dlexp.render import terminal
        from dlexp.training.groups import seed_group

        rest = [a for a in args if not a.startswith("seeds=")]
        group = seed_group(seeds[0].split("=", 1)[1], rest, tags=tags, echo=echo)
        terminal.diagnosis(group, title=f"{len(group.seeds['seeds'])} seeds pooled · parent run")
        done.runs.append({"run_id": group.run_id, "report": group, "error": None, "exc": None})
    else:
        from dlexp.training.launch import run_jobs

        for job in run_jobs(args, tags=tags):
            done.runs.append({"run_id": job.run_id, "report": job.report, "error": job.error, "exc": job.exc})
    for run in done.runs:
        if run["report"] is not None and run["run_id"]:
            run["comparison"] = compare(uri, report.run_id, run["run_id"])
    return done


def unmasked(args: list[str], uri: str | None, *, run_id: str, step: int) -> list[str]:
    """A stored command's overrides made runnable: a tracking.uri whose password dlexp masked (it stores none)
    becomes the store the run was read from (--uri, or $DLEXP_TRACKING_URI); any other masked URL (a database's
    data.url) is one line saying how to give its password.

    >>> unmasked(["seed=1", "tracking.uri=http://ana:***@db"], "http://ana:pw@db", run_id="r", step=1)
    ['seed=1', 'tracking.uri=http://ana:pw@db']
    """
    from dlexp.tracking.store import masked, store_uri

    out = []
    for a in args:
        key = a.split("=", 1)[0].lstrip("+~")
        if masked(a) and key == "tracking.uri":
            store = store_uri(uri)
            if masked(store):
                raise ConfigError(f"step {step} of run {run_id} trains into {a.split('=', 1)[1]}, whose password "
                                  "dlexp does not store; give the store with --uri, the password in it or in "
                                  "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD")
            a = f"{key}={store}"
        elif masked(a):
            raise ConfigError(f"step {step} of run {run_id} repeats {key} with its password masked (dlexp stores "
                              f"none); run the step's command by hand with the password, or train with "
                              f"{key}='${{oc.env:VARIABLE}}' so that its next steps read it from the environment")
        out.append(a)
    return out


def compare(uri: str | None, a: str, b: str):
    """B against A (`dlexp compare A B`: paired where both saw the same examples), also written into B's
    Description under its lineage. Returns the Comparison."""
    from dlexp.tracking import runs as tracking_runs
    from dlexp.tracking.compare import compare_runs

    comparison = compare_runs(uri, a, b)
    tracking_runs.describe(uri, b, compared=comparison.document())
    return comparison
