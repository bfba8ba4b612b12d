"""`dlexp recipe`: Andrew Ng's loop, run by dlexp while the user sleeps.

    start run ─► diagnose (test held out) ─► the largest problem's top K actions ─► train them, one job
    list through Hydra's launcher (what worked last round first) ─► compare each with the incumbent, paired,
    on dev ─► accept the largest significant drop (a gap that rose is the next rounds' problem) ─► repeat

Every decision is a pure function of `dlexp.diagnosis.recipe`; this module trains, reads back and keeps
the trail. A parent `recipe` run in MLflow holds every training run as a child (mlflow.parentRunId), the
trail as `recipe/trail.csv` and `recipe/trail.json`, and `plots/recipe_path.png`; Ctrl-C ends it KILLED
with the trail so far, and `dlexp recipe --from PARENT` continues it in the same parent run.

Selecting on dev many times overfits dev: the recipe reads the test error once, for the final model, and
reports it with the dev_overfitting gap.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shlex
import signal
import time
import uuid
from pathlib import Path

from dlexp.diagnosis import GAP_TERMS, Diagnosis, Report, SplitErrors, diagnose, recommend
from dlexp.diagnosis.actions import label
from dlexp.diagnosis.recipe import (HELD_OUT, WATCHED, Candidate, Helped, best, bold, candidates, decide, follow_ups,
                                   key_of, next_or_rest, same_data, still_falling, stop_reason)
from dlexp.errors import ConfigError, DlexpError, StoreError

PARENT = "mlflow.parentRunId"
FOLLOWS = "dlexp.follows"   # the run a candidate was compared with (as `dlexp next` tags it)
ACTION = "dlexp.action"
KIND = "recipe"
DEFAULT_BUDGET = 8
DEFAULT_CANDIDATES = 2
TRAIL_FIELDS = ("round", "problem", "action", "command", "run_id", "dev_error", "diff", "interval", "p_value",
                "method", "accepted", "outcome", "reason")


class Stopped(DlexpError):
    """The recipe was stopped by a signal after writing its trail; the shell's 128 + signal number."""

    def __init__(self, signum: int, parent: str, runs: int, document: dict | None = None):
        self.signum, self.document = signum, document
        super().__init__(f"recipe stopped by {signal.Signals(signum).name} after {runs} training run"
                         f"{'s' if runs != 1 else ''}; its trail so far is in run {parent}; "
                         f"continue it with: dlexp recipe --from {parent}")

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return 128 + self.signum


def split_argv(args: list[str]) -> tuple[list[str], list[str]]:
    """(Hydra's own settings: launcher, sweeper; the config overrides every run repeats).

    >>> split_argv(["experiment=underfit", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])
    (['hydra/launcher=joblib', 'hydra.launcher.n_jobs=2'], ['experiment=underfit'])
    """
    hydra = [a for a in args if a.lstrip("+~").startswith(("hydra/", "hydra."))]
    return hydra, [a for a in args if a not in hydra]


def _plain_overrides(overrides: list[str]) -> list[str]:
    """A run's overrides without the recipe's own run name and early-stop settings (not part of the experiment)."""
    return [o for o in overrides if not o.lstrip("+~").startswith(("tracking.run_name=", "prune."))]


def prune_overrides(uri: str, inc: Incumbent, chosen: list[Candidate]) -> list[list[str]]:
    """Per candidate, the settings that stop it when clearly losing to the incumbent (dlexp/training/prune.py):
    the incumbent's dev curve, compared from half the epochs of the longer of the two runs on (a candidate that
    trains twice as long is behind at first), raised by 3 standard errors of its dev error; [] without a curve."""
    from dlexp.tracking.runs import dev_curve
    from dlexp.training.prune import from_epoch_of, margin_of

    curve, n_dev = dev_curve(uri, inc.run_id), (inc.report.sizes or {}).get("dev")
    if len(curve) < 2 or not n_dev:
        return [[] for _ in chosen]
    against = "prune.against=[" + ",".join(f"{v:.4f}" for v in curve) + "]"
    margin = f"prune.margin={margin_of(inc.report.diagnosis.errors.dev, n_dev):.4f}"
    out = []
    for c in chosen:
        planned = [o.split("=", 1)[1] for o in c.overrides if o.lstrip("+~").startswith("trainer.max_epochs=")]
        epochs = int(planned[-1]) if planned and planned[-1].isdigit() else len(curve)
        out.append([against, f"prune.from_epoch={from_epoch_of(max(epochs, len(curve)))}", margin])
    return out


def held_out(report: Report) -> Diagnosis:
    """The run's diagnosis with the test split held out: test taken equal to dev, so dev_overfitting is 0
    and never a problem, and no decision of the recipe depends on the test error."""
    d = report.diagnosis
    e = d.errors
    sizes = dict(report.sizes or {}, test=None)
    given = None
    if report.task == "regression":
        given = {k: v for k, v in (d.intervals or {}).items() if k not in ("human", "test", HELD_OUT)}
    human = (d.intervals or {}).get("human")
    blind = diagnose(SplitErrors(e.human, e.train, e.train_dev, e.dev, e.dev), tolerance=d.tolerance,
                     diverged_at=d.diverged_at, diverged=d.verdict == "diverged", sizes=sizes,
                     human_range=human if human and human[0] != human[1] else None, given_intervals=given,
                     human_known=d.human_known)
    problems = tuple(p for p in blind.problems if p != HELD_OUT)  # a tolerance of 0 would count a 0 gap
    verdict = blind.verdict if blind.verdict != HELD_OUT else (problems[0] if problems else "within_tolerance")
    return dataclasses.replace(blind, problems=problems, verdict=verdict)


@dataclasses.dataclass
class Incumbent:
    run_id: str
    report: Report           # the stored run's full report (test included: read only for the final model)
    overrides: list[str]     # its config overrides, as its commands repeat them
    config: dict
    title: str | None


def _flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in (config or {}).items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_incumbent(uri: str | None, run_id: str) -> Incumbent:
    from dlexp.tracking import runs as tracking_runs
    from dlexp.tracking.rediagnose import rediagnose

    report, title = rediagnose(uri, run_id)
    if report.seeds or report.curve:
        kind = "a seed group" if report.seeds else "a learning curve"
        raise ConfigError(f"run {run_id} is {kind}'s parent run; a recipe starts from one training run "
                          "(one of its child runs, `dlexp runs` lists them) or from a recipe's parent run")
    run = tracking_runs.load_run(uri, report.run_id)
    overrides = _plain_overrides(list(run["overrides"]))
    from dlexp.diagnosis import labels as label_steps  # wrong labels: the label step comes first

    d = report.diagnosis
    steps = label_steps.steps(report.labels, tolerance=d.tolerance, run_id=report.run_id, overrides=overrides,
                              source=((run["config"] or {}).get("data") or {}).get("name"),
                              human=d.errors.human if d.human_known else None)
    report = dataclasses.replace(report, actions=steps + tuple(recommend(d, run["config"] or None, overrides=overrides)))
    return Incumbent(report.run_id, report, overrides, run["config"] or {}, title)


def bold_steps(uri: str | None, inc: Incumbent, pool: list[Candidate], *, force: bool = False) -> list[Candidate]:
    """The bold candidate of each problem whose gap is far from the tolerance (see `bold`), read with the
    incumbent's dev error per epoch (still falling at the last epoch: its variance step trains longer) and its
    model's depth step (its variance step adds a layer); `force`: whatever the gap. Without `uri`, no curve
    is read."""
    from dlexp.diagnosis.actions import deeper
    from dlexp.tracking.runs import dev_curve

    d = held_out(inc.report)
    gaps = {g.name: g.value for g in d.gaps}
    curve = dev_curve(uri, inc.run_id) if uri is not None else []
    more = deeper(inc.config)
    out = []
    for problem in dict.fromkeys(c.problem for c in pool):
        step = bold(pool, problem, gaps.get(problem), d.tolerance, _flat(inc.config), inc.overrides,
                    falling=still_falling(curve), deeper=more[1] if more else (), force=force)
        if step is not None:
            out.append(step)
    return out


def pool_of(inc: Incumbent, *, keep_data: bool = False, every: bool = False) -> list[Candidate]:
    """The incumbent's trainable candidates, largest problem first, with the test split held out; with
    `keep_data` (--same-data), none that adds training rows; with `every`, the actions of every watched
    problem, its own problems first (what is left to try once those are spent). The label step (train without
    the rows the incumbent flagged as wrong labels) comes first when the incumbent's report has it."""
    d = held_out(inc.report)
    if every:
        d = dataclasses.replace(d, problems=d.problems + tuple(p for p in WATCHED if p not in d.problems))
    labels = [a for a in inc.report.actions if a.problem == "labels"]
    actions = labels + list(recommend(d, inc.config or None, overrides=inc.overrides))
    pool = candidates(actions, _flat(inc.config), base=inc.overrides)
    return same_data(pool) if keep_data else pool


# ------------------------------------------------------------------------------------------ the parent run


class ParentRun:
    """The `recipe` parent run: opened (or reopened, to continue) before the first child trains."""

    def __init__(self, uri: str, *, experiment: str, name: str, params: dict, overrides: list[str],
                 resume_run_id: str | None = None):
        from dlexp.tracking.recorder import Recorder
        from dlexp.tracking.store import runs_dir

        self.workdir = runs_dir() / "work" / f"{time.strftime('%Y%m%d-%H%M%S')}-recipe-{uuid.uuid4().hex[:8]}"
        self.recorder = Recorder(
            {"uri": uri, "experiment": experiment, "run_name": name, "resume_run_id": resume_run_id,
             "params": params, "tags": {"dlexp.overrides": json.dumps(overrides), "dlexp.kind": KIND}},
            log_path=self.workdir / "tracking.log")

    @property
    def run_id(self) -> str:
        return self.recorder.run_id

    def finish(self, status: str, document: dict, final: Report | None, incumbent: Incumbent | None) -> None:
        """Write the trail (CSV, JSON) and, with a final model, its diagnosis and the path plot."""
        folder = self.workdir / "recipe"
        write_trail(document, folder)
        tags = {"dlexp.kind": KIND, "dlexp.recipe.stopped_because": document.get("stopped_because") or "",
                "dlexp.recipe.runs": str(document["budget"]["used"])}
        payload: dict = {"tags": tags, "artifacts": {str(folder): "recipe"}, "history": []}
        if final is not None and incumbent is not None:
            report = dataclasses.replace(final, run_id=self.run_id)
            doc = dict(report.document(), recipe=document)
            payload.update(metrics=report.metrics(), document=doc)
            tags.update(report.tags())
            tags["dlexp.overrides"] = json.dumps(incumbent.overrides)
            tags["dlexp.recipe.final"] = incumbent.run_id
            # the final model's config, so that `dlexp diagnose PARENT` prints its next commands
            import yaml

            conf = self.workdir / "config"
            conf.mkdir(parents=True, exist_ok=True)
            from dlexp.tracking.store import scrub_tree

            (conf / "config.yaml").write_text(yaml.safe_dump(scrub_tree(incumbent.config), sort_keys=False))
            payload["artifacts"][str(conf)] = ""
        elif status == "KILLED":
            tags["dlexp.error"] = "stopped by a signal; continue it with: dlexp recipe --from " + self.run_id
        payload["cleanup"] = [str(self.workdir)]
        self.recorder.finish(status, **payload)


def write_trail(document: dict, folder: Path) -> None:
    from dlexp.tracking.store import scrub_tree

    document = scrub_tree(document)  # its commands repeat the overrides: no URL's password is kept
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trail.json").write_text(json.dumps(document, indent=2))
    with open(folder / "trail.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TRAIL_FIELDS, extrasaction="ignore")
        w.writeheader()
        for row in document["trail"]:
            w.writerow({**row, "interval": json.dumps(row.get("interval"))})


# ------------------------------------------------------------------------------------------------ the loop


def recipe(args: list[str], *, budget: int | None = None, k: int | None = None, start_from: str | None = None,
           uri: str | None = None, keep_data: bool = False, prune: bool | None = None, echo=print) -> dict:
    """Run (or continue) the recipe; return its document (what `dlexp recipe --json` prints)."""
    if budget is not None and budget < 1:
        raise ConfigError(f"--budget is the number of training runs the recipe may start; it must be at "
                          f"least 1, got {budget}")
    if k is not None and k < 1:
        raise ConfigError(f"--candidates must be at least 1, got {k}")
    hydra_args, overrides = split_argv(list(args))
    if start_from is not None and [o for o in overrides if not o.startswith(("tracking.", "+tracking."))]:
        raise ConfigError(f"--from continues from a run's own config, so its candidates differ from it by one "
                          f"action and stay comparable; drop {' '.join(overrides)} (or start a fresh recipe "
                          "with them); only hydra/launcher settings may be given with --from")
    from dlexp.tracking.store import store_uri

    given_uri = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("tracking.uri=")]
    uri = store_uri(given_uri[-1] if given_uri else uri)
    state = _open(uri, hydra_args, overrides, budget=budget, k=k, start_from=start_from, keep_data=keep_data,
                  echo=echo)
    if prune is not None:  # --prune/--no-prune; without either, on (or as the continued recipe had it)
        state["prune"] = prune
    return _loop(uri, state, echo=echo)


def _open(uri, hydra_args, overrides, *, budget, k, start_from, keep_data, echo) -> dict:
    """The recipe's state: fresh, from a training run, or a stopped recipe read back from its parent run."""
    from dlexp.training.groups import compose

    state = {"budget": budget or DEFAULT_BUDGET, "k": k or DEFAULT_CANDIDATES, "hydra": hydra_args,
             "same_data": bool(keep_data), "prune": True,
             "overrides": overrides, "start": None, "trail": [], "used": 0, "parent": None, "incumbent": None}
    if start_from is not None:
        from dlexp.tracking import trail as stored

        info = stored.run_info(uri, start_from)
        if info["kind"] == KIND:  # continue a stopped recipe
            saved = stored.read_trail(uri, info["run_id"])
            if saved is None:
                raise StoreError(f"run {start_from} is a recipe's parent run without a trail (it stopped before "
                                 "writing one); start a fresh recipe")
            if info["status"] == "RUNNING":
                raise StoreError(f"recipe {start_from} is still running; stop it first (Ctrl-C), then continue it")
            s = saved.get("state") or {}
            state.update(budget=budget or s.get("budget", DEFAULT_BUDGET), k=k or s.get("k", DEFAULT_CANDIDATES),
                         same_data=bool(keep_data or s.get("same_data")), prune=s.get("prune", True),
                         hydra=hydra_args or s.get("hydra", []), overrides=s.get("overrides", []),
                         start=saved.get("start"), trail=list(saved.get("trail", [])),
                         used=s.get("used", 0), incumbent=s.get("incumbent"), parent=info["run_id"],
                         experiment=info["experiment"], continued=True)
            echo(f"dlexp: continuing recipe {info['run_id']} ({info['status']}, {state['used']} training runs "
                 f"so far, budget {state['budget']})")
        else:
            inc = load_incumbent(uri, info["run_id"])
            state.update(overrides=inc.overrides, incumbent=inc.run_id, experiment=info["experiment"],
                         start=_summary(inc))
    cfg = compose(state["overrides"])
    state["title"] = f"{cfg.model.name} on {cfg.data.name}"
    name = f"recipe · {state['title']}"
    # no params: the parent stands for the final model, whose config changes as changes are accepted; its
    # config.yaml, errors and verdict are the final model's once the recipe ends
    parent = ParentRun(uri, experiment=state.get("experiment") or cfg.tracking.experiment, name=name,
                       params={}, overrides=state["overrides"], resume_run_id=state["parent"])
    state["parent_run"] = parent
    state["parent"] = parent.run_id
    return state


def _summary(inc: Incumbent) -> dict:
    """The start of the recipe as it was judged: test held out (its error is not read, and left out)."""
    d = held_out(inc.report)
    errors = dict(inc.report.document()["errors"], test=None)
    return {"run_id": inc.run_id, "verdict": d.verdict, "errors": errors,
            "gaps": {g.name: g.value for g in d.gaps if g.name != HELD_OUT},
            "command": " ".join(["dlexp", "train"] + [shlex.quote(o) for o in inc.overrides])}


def _seen_errors(report: Report) -> dict:
    """A candidate's errors as the recipe sees them: the test error left out."""
    return {k: v for k, v in report.diagnosis.errors.as_dict().items() if k != "test"}


def rest_of(uri: str | None, inc: Incumbent, keep_data: bool) -> list[Candidate]:
    """What is left to try once the incumbent's problems have no untried candidate: the bold steps of every
    problem whatever its gap, then every watched problem's actions."""
    every = pool_of(inc, keep_data=keep_data, every=True)
    return bold_steps(uri, inc, every, force=True) + every


def _loop(uri: str, state: dict, *, echo) -> dict:
    parent: ParentRun = state.pop("parent_run")
    inc: Incumbent | None = None
    stopped = None
    old_handler = signal.getsignal(signal.SIGINT)
    try:
        if state["incumbent"] is None:
            inc = _start(uri, state, echo=echo)
        else:
            inc = load_incumbent(uri, state["incumbent"])
        while True:
            pool = pool_of(inc, keep_data=state["same_data"])
            tried = {key_of(r["command"]) for r in state["trail"] if r.get("incumbent") == inc.run_id}
            follow = follow_ups(helped_by(state["trail"], inc.run_id), _flat(inc.config), inc.overrides, pool)
            if state["same_data"]:
                follow = same_data(follow)
            verdict = held_out(inc.report).verdict
            rest = rest_of(uri, inc, state["same_data"]) if verdict not in ("within_tolerance", "inconclusive") else []
            problem, chosen, leftover = next_or_rest(pool, rest, tried, state["k"], follow + bold_steps(uri, inc, pool))
            stopped = stop_reason(verdict, left=len(chosen), budget_left=state["budget"] - state["used"])
            if stopped:
                break
            chosen = chosen[:state["budget"] - state["used"]]
            why = " (left to try: the incumbent's own actions were all compared)" if leftover else \
                _raised_by(state["trail"], inc.run_id, problem)
            inc = _round(uri, state, inc, problem, chosen, echo=echo, why=why)
    except BaseException as exc:
        from dlexp.training.signals import interruption

        signum = interruption(exc)  # a Ctrl-C stays one, whatever exception it became on its way up
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the trail is written whatever a second Ctrl-C says
        doc = None
        try:
            state["stopped_because"] = "interrupted" if signum else "failed"
            doc = document(state, inc, None)
            parent.finish("KILLED" if signum else "FAILED", doc, None, None)
        except DlexpError:
            pass
        finally:
            signal.signal(signal.SIGINT, old_handler)
        if signum:
            raise Stopped(signum, state["parent"], state["used"], doc) from None
        raise
    state["stopped_because"] = stopped
    final = inc.report  # the test error, read once: the final model's
    doc = document(state, inc, final, uri=uri)
    parent.finish("FINISHED", doc, final, inc)
    return doc


def _start(uri: str, state: dict, *, echo) -> Incumbent:
    echo(f"dlexp: recipe {state['parent']}: training the start run")
    cfg_name = f"recipe start · {state['title']}" if state.get("title") else "recipe start"
    results = _train(state, [state["overrides"]], names=[cfg_name], follows=None)
    r = results[0]
    if not r.ok:
        raise r.exc or DlexpError(r.error)
    state["used"] += 1
    inc = load_incumbent(uri, r.run_id)
    state["incumbent"] = inc.run_id
    state["start"] = _summary(inc)
    d = held_out(inc.report)
    echo(f"dlexp: start run {inc.run_id}: dev error {inc.report.diagnosis.errors.dev:.2%}, verdict {d.verdict}")
    return inc


def _train(state: dict, jobs: list[list[str]], *, names: list[str], follows: str | None,
           labels: list[dict] | None = None):
    """One job list through Hydra's launcher, each job a child of the parent run, named from its start."""
    from dlexp.training.launch import run_jobs
    from dlexp.training.signals import Interrupted, interruption

    tags = {PARENT: state["parent"]}
    if follows:
        tags[FOLLOWS] = follows
    results = run_jobs(list(state["hydra"]), jobs=[list(j) for j in jobs], tags=tags, quiet=True,
                       job_tags=[{"mlflow.runName": name, **extra}
                                 for name, extra in zip(names, labels or [{}] * len(names))])
    stop = next((r.exc for r in results if isinstance(r.exc, Interrupted)), None)
    if stop is not None:
        raise stop
    if interruption(None) is not None:  # a signal this process handled, whatever the job made of it
        raise Interrupted(interruption(None))
    return results


def helped_by(trail: list[dict], run_id: str) -> list[Helped]:
    """The candidates that lowered the dev error significantly in the round that made `run_id` the
    incumbent (the accepted one first); none for the start run."""
    made = next((r for r in trail if r.get("run_id") == run_id and r.get("accepted")), None)
    if made is None:
        return []
    rows = [r for r in trail if r["round"] == made["round"] and r.get("improved") and r.get("overrides") is not None]
    rows.sort(key=lambda r: not r["accepted"])
    return [Helped(r["problem"], r["action"], tuple(r["overrides"]), r.get("was") or {}, bool(r["accepted"]))
            for r in rows]


def _raised_by(trail: list[dict], run_id: str, problem: str) -> str:
    """" (raised by round 2's train longer)" when the change that made `run_id` the incumbent raised `problem`."""
    made = next((r for r in trail if r.get("run_id") == run_id and r.get("accepted")), None)
    if made is None or problem not in (made.get("raised") or []):
        return ""
    return f" (raised by round {made['round']}'s {label(made['action'])})"


def _round(uri: str, state: dict, inc: Incumbent, problem: str, chosen: list[Candidate], *, echo,
           why: str = "") -> Incumbent:
    from dlexp.tracking import runs as stored_runs
    from dlexp.tracking.compare import compare_runs

    number = max((r["round"] for r in state["trail"]), default=0) + 1
    echo(f"dlexp: round {number} · {problem}{why}: training {len(chosen)} candidate"
         f"{'s' if len(chosen) > 1 else ''} against run {inc.run_id} (dev error {inc.report.diagnosis.errors.dev:.2%})")
    for c in chosen:
        echo(f"  $ {c.command}")
    stop_losing = prune_overrides(uri, inc, chosen) if state.get("prune", True) else [[] for _ in chosen]
    jobs = [shlex.split(c.command)[2:] + extra for c, extra in zip(chosen, stop_losing)]
    names = [f"recipe round {number} · {label(c.action)}" for c in chosen]
    labels = [{ACTION: c.action, "dlexp.recipe.round": str(number)} for c in chosen]
    results = _train(state, jobs, names=names, follows=inc.run_id, labels=labels)
    rows, decisions = [], []
    for c, r, extra in zip(chosen, results, stop_losing):
        state["used"] += 1
        flat = _flat(inc.config)
        row = {"round": number, "problem": problem, "action": c.action, "command": c.command, "run_id": r.run_id,
               "incumbent": inc.run_id, "dev_error": None, "diff": None, "interval": None, "p_value": None,
               "method": None, "accepted": False, "improved": False, "raised": [], "overrides": list(c.overrides),
               "was": {k: flat.get(k) for k in (o.split("=", 1)[0].lstrip("+~") for o in c.overrides)}}
        if not r.ok:
            row["reason"], row["outcome"] = f"failed: {r.error}", "failed"
            rows.append(row)
            decisions.append((None, 0.0))
            continue
        comparison = compare_runs(uri, inc.run_id, r.run_id).document()
        stored_runs.describe(uri, r.run_id, compared=comparison)  # the MLflow Description: lineage, comparison
        dev = comparison["splits"]["dev"]
        decision = decide(comparison, tolerance=inc.report.diagnosis.tolerance, target=problem)
        cut = stored_runs.pruned(uri, r.run_id) if extra else None
        if cut is not None:  # a clearly losing candidate: one run of the budget, a share of its epochs
            decision = dataclasses.replace(decision, accepted=False, improved=False, raised=(), reason=(
                f"stopped early after {cut} planned epochs: its best dev error was above the incumbent's at the "
                f"same epoch by more than the margin; {decision.reason}"))
        row.update(errors=_seen_errors(r.report), dev_error=dev.get("b"), diff=dev.get("diff"), interval=dev.get("interval"),
                   p_value=dev.get("p_value"), method=dev.get("method"), reason=decision.reason,
                   improved=decision.improved, raised=list(decision.raised))
        rows.append(row)
        decisions.append((decision, dev.get("diff") or 0.0))
        row["outcome"] = "stopped early" if cut is not None else _outcome(decision, dev)
        if cut is not None:
            row["stopped_early"] = cut
    pick = best([(d, diff) for d, diff in decisions if d is not None]) if any(d for d, _ in decisions) else None
    if pick is not None:  # the index among the compared rows: map back to all rows
        compared = [i for i, (d, _) in enumerate(decisions) if d is not None]
        pick = compared[pick]
        rows[pick]["accepted"] = True
        for i, (d, _) in enumerate(decisions):
            if d is not None and d.accepted and i != pick:
                rows[i]["reason"] += f"; {rows[pick]['action'].split(':')[0]} lowered it more"
                rows[i]["outcome"] = "a larger drop won"
        rows[pick]["outcome"] = _outcome(decisions[pick][0], {})
    state["trail"].extend(rows)
    for row in rows:
        mark = "accepted" if row["accepted"] else "not accepted"
        echo(f"dlexp: round {number} · {row['action']}: {mark} — {row.get('reason')}")
    if pick is None:
        return inc
    new = load_incumbent(uri, rows[pick]["run_id"])
    state["incumbent"] = new.run_id
    return new


def _outcome(decision, dev: dict) -> str:
    """A candidate's fate in a few words, for the trail table."""
    if decision.accepted:
        return "accepted" + (f" (raises {', '.join(decision.raised)})" if decision.raised else "")
    interval = dev.get("interval")
    return "worse" if interval and interval[0] > 0 else "within noise"


def document(state: dict, inc: Incumbent | None, final: Report | None, *, uri: str | None = None) -> dict:
    """The recipe's JSON document: start, trail, final, why it stopped, what is left to try (what worked,
    again; the bold steps, read with the incumbent's dev curve from `uri`; the incumbent's other candidates)."""
    left = []
    if inc is not None:  # what worked, again; the incumbent's candidates not compared with it yet; the actions
        tried = {key_of(r["command"]) for r in state["trail"] if r.get("incumbent") == inc.run_id}  # done by hand
        pool = pool_of(inc, keep_data=state["same_data"])
        steps = follow_ups(helped_by(state["trail"], inc.run_id), _flat(inc.config), inc.overrides, pool)
        if state["same_data"]:
            steps = same_data(steps)
        steps += bold_steps(uri, inc, pool_of(inc, keep_data=state["same_data"], every=True), force=True)
        for c in steps:
            if c.key not in tried:
                tried.add(c.key)
                left.append({"problem": c.problem, "action": c.action, "command": c.command})
        actions = recommend(held_out(inc.report), inc.config or None, overrides=inc.overrides)
        for a in actions:
            if a.command is None or a.problem == "inconclusive":
                left.append({"problem": a.problem, "action": a.action, "command": a.command})
                continue
            for c in candidates([a], _flat(inc.config), base=inc.overrides):
                if c.key not in tried and (not state["same_data"] or same_data([c])):
                    left.append({"problem": c.problem, "action": c.action, "command": c.command})
    final_doc = None
    if final is not None and inc is not None:
        fd = final.document()
        final_doc = {"run_id": inc.run_id, "verdict": final.diagnosis.verdict, "errors": fd["errors"],
                     "gaps": fd["gaps"], "intervals": {k: fd["intervals"].get(k) for k in
                                                       ("dev", "test", *GAP_TERMS)},
                     "problems": fd["problems"]}
    accepted = [r for r in state["trail"] if r["accepted"]]
    n_selected = len([r for r in state["trail"] if r.get("dev_error") is not None]) + 1
    return {
        "run_id": state["parent"],
        "start": state["start"],
        "trail": [{k: r.get(k) for k in (*TRAIL_FIELDS, "incumbent", "errors", "improved", "raised", "overrides", "was",
                                         "stopped_early")}
                  for r in state["trail"]],
        "final": final_doc,
        "stopped_because": state.get("stopped_because"),
        "left_to_try": left,
        "accepted": len(accepted),
        "budget": {"limit": state["budget"], "used": state["used"]},
        "metric": inc.report.metric if inc is not None else "error_rate",
        "candidates": state["k"],
        "test_note": (f"dev chose among {n_selected} runs, so dev is optimistic; the test error was read once, "
                      "for the final model, and the dev_overfitting gap (test - dev) measures that selection"),
        "state": {"budget": state["budget"], "k": state["k"], "hydra": state["hydra"], "same_data": state["same_data"],
                  "prune": state.get("prune", True),
                  "overrides": state["overrides"], "used": state["used"], "incumbent": state["incumbent"]},
    }
