"""The `dlexp` command. Each command parses, calls one function, renders; a DlexpError becomes one line.

Imports here stay light (Typer only): torch, Lightning, MLflow and rich load inside the command that
needs them, so `dlexp --help` answers at once and `dlexp diagnose` never loads torch.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from typing import Annotated, Optional

import typer

from dlexp.errors import ConfigError, DlexpError
from dlexp.tracking.store import require_store

app = typer.Typer(
    name="dlexp",
    help="Train a model, measure its error on four splits (train, train-dev, dev, test) against a "
         "human-level baseline, and say what to fix next: avoidable bias, variance, data mismatch or "
         "dev-set overfitting. Runs are kept in MLflow (./runs, or $DLEXP_RUNS_DIR).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_DIVERGED = 4


def _debug() -> bool:
    return os.environ.get("DLEXP_DEBUG", "") not in ("", "0")


def _fail(message: str, code: int) -> None:
    from dlexp.tracking.store import scrub

    typer.echo(f"dlexp: error: {scrub(message)}", err=True)
    raise typer.Exit(code)


def friendly(fn):
    """Turn dlexp's errors into one line and an exit code; a traceback only with DLEXP_DEBUG=1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from dlexp.training import signals

        with signals.watch():
            try:
                return fn(*args, **kwargs)
            except typer.Exit:
                raise
            except BaseException as exc:
                if _debug():
                    raise
                _explain(exc, signals.interruption(exc))

    return wrapper


def _explain(exc: BaseException, signum: int | None) -> None:
    """One line and an exit code for `exc`; a Ctrl-C / SIGTERM stays one (128 + signal) whatever it became."""
    if isinstance(exc, DlexpError):
        _fail(str(exc), 128 + signum if signum is not None else exc.exit_code)
    if signum is not None:
        import signal

        _fail(f"interrupted by {signal.Signals(signum).name}", 128 + signum)
    if not isinstance(exc, Exception):
        raise exc
    from dlexp.config import explain

    if type(exc).__module__.split(".")[0] in ("hydra", "omegaconf"):
        _fail(explain(exc), ConfigError.exit_code)
    _fail(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''} "
          "(set DLEXP_DEBUG=1 for the traceback)", 1)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@friendly
def train(
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="Hydra overrides: model=mlp 'model.hidden=[512,512]' trainer.max_epochs=20 data.shift=1.5",
        show_default=False)] = None,
    multirun: Annotated[bool, typer.Option(
        "-m", "--multirun", help="Sweep: one run per combination (optimizer.lr=1e-3,1e-2), through Hydra's "
                                 "launcher (hydra/launcher=joblib runs them in parallel).")] = False,
    resume: Annotated[Optional[str], typer.Option(
        "--resume", metavar="RUN_ID", help="Continue this run (KILLED, FAILED, or FINISHED to train longer) "
                                            "from its last checkpoint, in the same MLflow run; overrides given "
                                            "here replace the run's own.", show_default=False)] = None,
) -> None:
    """Train, measure error on four splits, print the verdict and the next commands, log it all to MLflow.

    Hydra's own flags pass through too: --cfg job (show the composed config), --config-dir DIR (your own
    config options), --info.

    seeds=3 (or seeds=[0,1,2]) trains one child run per seed under an MLflow parent run and diagnoses the
    pooled result, with the seed-to-seed spread in the intervals.
    """
    seeds = [o for o in overrides or [] if o.startswith("seeds=")]
    if seeds:
        if multirun or len(seeds) > 1:
            raise ConfigError("seeds= takes one value and does not combine with -m/--multirun")
        from dlexp.render import terminal as render
        from dlexp.training.groups import seed_group

        rest = [o for o in overrides if not o.startswith("seeds=")]
        report = seed_group(seeds[0].split("=", 1)[1], rest)
        render.diagnosis(report, title=f"{len(report.seeds['seeds'])} seeds pooled · parent run")
        if report.diagnosis.verdict == "diverged":
            raise typer.Exit(EXIT_DIVERGED)
        return
    from dlexp.training.launch import run_hydra

    reports = run_hydra((["-m"] if multirun else []) + list(overrides or []), resume=resume)
    if len(reports) == 1 and reports[0].diagnosis.verdict == "diverged":
        d = reports[0].diagnosis
        typer.echo(f"dlexp: training diverged (non-finite loss at step {d.diverged_at}); run {reports[0].run_id} "
                   "is tagged dlexp.verdict=diverged; lower optimizer.lr or set optimizer.grad_clip", err=True)
        raise typer.Exit(EXIT_DIVERGED)


@app.command(name="next")
@friendly
def next_step(
    args: Annotated[Optional[list[str]], typer.Argument(
        metavar="[RUN_ID] [N]", help="The run (default: the latest) and which of its next steps to run "
                                     "(default: 1, the first). `dlexp next 3` runs step 3 of the latest run.",
        show_default=False)] = None,
    uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI (default: $DLEXP_TRACKING_URI, else runs/mlflow.db).")] = None,
) -> None:
    """Run next step N of a run's diagnosis (the exact command it printed), then compare the new run with it.

    The new run is tagged dlexp.follows (the run) and dlexp.action (the step).
    MLflow names it after the step (mlp · synthetic · bigger model); `dlexp runs` shows what it follows.
    """
    from dlexp.training.lineage import follow, parse_args

    run_id, step = parse_args(list(args or []))
    require_store(uri)
    done = follow(uri, run_id, step)
    from dlexp.render import terminal as render

    for run in done.runs:
        if run.get("comparison") is not None:
            typer.echo(f"dlexp next · the new run against the run it follows (step {step}: {done.action.action})")
            render.compare(run["comparison"])
    failed = [r for r in done.runs if r["error"]]
    if failed:
        if len(failed) == len(done.runs) == 1:
            raise failed[0]["exc"] or DlexpError(failed[0]["error"])
        raise DlexpError(f"{len(failed)} of {len(done.runs)} jobs of step {step} failed (see above)")
    if len(done.runs) == 1 and done.runs[0]["report"].diagnosis.verdict == "diverged":
        raise typer.Exit(EXIT_DIVERGED)


@app.command()
@friendly
def diagnose(
    run_id: Annotated[Optional[str], typer.Argument(help="Run to diagnose (a seed group's parent: the pooled "
                                                         "group); default: the latest run.", show_default=False)] = None,
    human: Annotated[Optional[str], typer.Option(help="Human-level error, or a range lo,hi from several annotators "
                                                      "(re-judges a run, or what-if).", show_default=False)] = None,
    train: Annotated[Optional[float], typer.Option(help="What-if: training error.")] = None,
    train_dev: Annotated[Optional[float], typer.Option("--train-dev", help="What-if: train-dev error.")] = None,
    dev: Annotated[Optional[float], typer.Option(help="What-if: dev error.")] = None,
    test: Annotated[Optional[float], typer.Option(help="What-if: test error.")] = None,
    n_train: Annotated[Optional[int], typer.Option("--n-train", help="What-if: training-set size.")] = None,
    n_train_dev: Annotated[Optional[int], typer.Option("--n-train-dev", help="What-if: train-dev size.")] = None,
    n_dev: Annotated[Optional[int], typer.Option("--n-dev", help="What-if: dev size.")] = None,
    n_test: Annotated[Optional[int], typer.Option("--n-test", help="What-if: test size.")] = None,
    metric: Annotated[Optional[list[str]], typer.Option(metavar="SPLIT=NAME", help="A run another tool logged: its "
                      "metric for a split (train=train_acc; train, dev, test; train_dev if it has one).")] = None,
    accuracy: Annotated[bool, typer.Option("--accuracy", help="--metric names accuracies: errors are 1 - them.")] = False,
    size: Annotated[Optional[list[str]], typer.Option(metavar="SPLIT=N", help="With --metric: the examples a "
                                                                              "split was measured on (dev=2000).")] = None,
    save: Annotated[bool, typer.Option("--save", help="With --metric: write the diagnosis onto that run.")] = False,
    tolerance: Annotated[Optional[float], typer.Option(
        help="Smallest gap that counts as a problem (default: the run's diagnosis.tolerance, or 0.01).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON document.")] = False,
    uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI (default: $DLEXP_TRACKING_URI, else runs/mlflow.db).")] = None,
) -> None:
    """Diagnose a finished run again (no torch import), a run another tool logged (--metric), or figures typed in.

    What-if: dlexp diagnose --human 0.01 --train 0.08 --train-dev 0.09 --dev 0.10 --test 0.11 [--n-train 8000 ...]:
    with the sizes every error and gap gets a 95% interval, and a gap counts only when its interval clears the
    tolerance; without them gaps are judged on their estimates.
    """
    from dlexp.tracking.rediagnose import request

    report, title = request(run_id, human=human, figures={"train": train, "train_dev": train_dev, "dev": dev,
                            "test": test}, sizes={"train": n_train, "train_dev": n_train_dev, "dev": n_dev,
                            "test": n_test}, tolerance=tolerance, uri=uri, metrics=metric or (), accuracy=accuracy,
                            size=size or (), save=save)
    if as_json:
        return typer.echo(json.dumps(report.document(), indent=2))
    from dlexp.render import terminal as render

    render.diagnosis(report, title=title)


@app.command()
@friendly
def compare(
    runs: Annotated[list[str], typer.Argument(
        help="A B: run B against run A; or B alone: B against the run it follows (its dlexp.follows tag).",
        metavar="RUN_IDS", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON comparison.")] = False,
    uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI (default: $DLEXP_TRACKING_URI, else runs/mlflow.db).")] = None,
) -> None:
    """Did run B help? Each split's error and each gap of B against A, with the change and its 95% interval.

    Paired where the runs saw the same examples: McNemar's exact test, Newcombe's paired interval.

    For RMSE/MAE a paired bootstrap; independent intervals where the examples differ. No torch import.
    """
    if len(runs) > 2:
        raise ConfigError(f"dlexp compare takes one or two run ids (B, or A B), got {len(runs)}")
    require_store(uri)
    from dlexp.tracking.compare import compare_runs, followed_run

    a, b = (followed_run(uri, runs[0]), runs[0]) if len(runs) == 1 else runs
    comparison = compare_runs(uri, a, b)
    if as_json:
        typer.echo(json.dumps(comparison.document(), indent=2))
        return
    from dlexp.render import terminal as render

    render.compare(comparison)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@friendly
def curve(
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="Hydra overrides for every point, as for dlexp train.", show_default=False)] = None,
    points: Annotated[int, typer.Option(help="How many sizes: halving down from data.n_train (data axis), "
                                             "or width factors 1/4..4 around the model's width knobs (model axis).")] = 5,
    fractions: Annotated[Optional[str], typer.Option(
        help="Explicit sizes instead: fractions of data.n_train (0.1,0.3,1) or width factors (0.5,1,2).",
        show_default=False)] = None,
    axis: Annotated[str, typer.Option(help="data: grow the training set; model: grow the model's width knobs (model.hidden).")] = "data",
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON result.")] = False,
) -> None:
    """Learning curve: would more data (or a bigger model) help? Trains at increasing sizes.

    Each point is a child run under one MLflow parent; train, train-dev and dev error are plotted against
    the size, a power law is fitted to the dev error and extrapolated to 2x and 10x.
    """
    frac = None
    if fractions is not None:
        try:
            frac = [float(f) for f in fractions.replace(" ", "").strip("[]").split(",") if f]
        except ValueError:
            raise ConfigError(f"--fractions takes numbers separated by commas, got {fractions!r}") from None
        if len(frac) < 2:
            raise ConfigError("--fractions needs at least two values")
    from dlexp.training.groups import curve as run_curve

    if as_json:
        with _stdout_to_stderr():  # the runs' own lines must not mix with the JSON
            result = run_curve(list(overrides or []), points=points, fractions=frac, axis=axis)
        typer.echo(json.dumps(result, indent=2))
        return
    result = run_curve(list(overrides or []), points=points, fractions=frac, axis=axis)
    from dlexp.render import terminal as render

    render.curve(result)


@app.command()
@friendly
def report(
    run_id: Annotated[Optional[str], typer.Argument(
        help="Run, seed group or curve (its parent run); default: the latest run.", show_default=False)] = None,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", help="Where to write the page (default: ./dlexp-report-<run>.html).",
        show_default=False)] = None,
    log: Annotated[bool, typer.Option(help="Also attach the page to the run as report.html.")] = True,
    uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI (default: $DLEXP_TRACKING_URI, else runs/mlflow.db).")] = None,
) -> None:
    """One self-contained HTML page of a run, a seed group or a curve, to send to a colleague.

    Tables and plots embedded; also logged to the run as report.html. No torch import.
    """
    from dlexp.tracking.report import write

    path = write(uri, run_id, out, log=log)
    typer.echo(f"wrote {path}" + (" (also attached to the run as report.html)" if log else ""))


@app.command()
@friendly
def predict(
    run_id: Annotated[str, typer.Argument(help="The run whose model scores the rows.", show_default=False)],
    rows: Annotated[str, typer.Argument(help="CSV, TSV or Parquet file of new rows: the training table's "
                                             "columns (x0, x1, ... for feature vectors), a text run's text column, "
                                             "or a `path` column of image files.", show_default=False)],
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", help="File to write, CSV (.parquet: Parquet, .tsv: TSV; default: CSV on stdout): the "
                            "rows with a `prediction` column.",
        show_default=False)] = None,
    uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI (default: $DLEXP_TRACKING_URI, else runs/mlflow.db).")] = None,
) -> None:
    """Score new rows with a run's MLflow model: class names (as the data names them) or numbers."""
    from dlexp.tracking.predict import predict as score

    n, rid = score(uri, run_id, rows, out)
    if out is not None:
        typer.echo(f"wrote {out}: {n} rows scored by run {rid}'s model")


@app.command()
@friendly
def register(
    run_id: Annotated[str, typer.Argument(help="The run whose model to register.", show_default=False)],
    name: Annotated[str, typer.Argument(help="The registered model's name.", show_default=False)],
    uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI (default: $DLEXP_TRACKING_URI, else runs/mlflow.db).")] = None,
) -> None:
    """Register a run's model in MLflow's Model Registry (a new version of NAME)."""
    from dlexp.tracking.predict import register_run

    version = register_run(uri, run_id, name)
    typer.echo(f"registered run {run_id}'s model as {name} version {version} (models:/{name}/{version})")


@app.command()
@friendly
def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI (default: $DLEXP_TRACKING_URI, else runs/mlflow.db).")] = None,
) -> None:
    """Recent runs, newest first: id, status, data, model, the four errors, the verdict, and the run each
    follows (`dlexp next`) with the step it took."""
    if limit <= 0:
        raise ConfigError(f"--limit must be positive, got {limit}")
    require_store(uri)
    from dlexp.tracking import runs as tracking_runs

    rows = tracking_runs.list_runs(uri, limit=limit)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from dlexp.render import terminal as render

    render.runs(rows)


@app.command()
@friendly
def ui(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 5000,
    host: Annotated[str, typer.Option(
        help="Address to listen on. Anything but loopback exposes your runs to the network.")] = "127.0.0.1",
    uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI (default: $DLEXP_TRACKING_URI, else runs/mlflow.db).")] = None,
) -> None:
    """MLflow's UI on dlexp's store; prints the URL. Ctrl-C, SIGTERM or SIGHUP stops it and its workers."""
    from dlexp.tracking.serve import serve
    from dlexp.tracking.store import redact

    if not 0 < port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    target = require_store(uri)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"dlexp: warning: serving on {host}: anyone who can reach this address can read your runs",
                   err=True)
    from dlexp.tracking import runs as tracking_runs

    where = tracking_runs.experiment_path(uri)  # opens MLflow 3's "Model training" view on dlexp's runs
    typer.echo(f"MLflow UI for {redact(target)} at "
               f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/{where} (Ctrl-C stops it)")
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", target,
           "--host", host, "--port", str(port)]
    # MLflow's Host-header (DNS rebinding) and cross-origin checks stay on: dlexp never passes
    # --disable-security-middleware, and drops the environment variables that would turn them off or open them
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE", "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS")}
    raise typer.Exit(serve(cmd, env))


@contextlib.contextmanager
def _stdout_to_stderr():
    """Everything written to stdout goes to stderr meanwhile, the jobs' worker processes (joblib) included:
    they inherit file descriptor 1."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@friendly
def recipe(
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="Hydra overrides of the start run, as for dlexp train (experiment=underfit ...); "
             "hydra/launcher=joblib hydra.launcher.n_jobs=2 trains each round's candidates in parallel.",
        show_default=False)] = None,
    budget: Annotated[Optional[int], typer.Option("--budget", show_default=False, help="Training runs the recipe "
                      "may start, the start run included (default 8; with --from a recipe, its budget).")] = None,
    candidates: Annotated[Optional[int], typer.Option("--candidates", show_default=False,
                          help="Actions of the largest problem trained per round (default 2).")] = None,
    start_from: Annotated[Optional[str], typer.Option(
        "--from", metavar="RUN_ID", help="Start from this finished run instead of a fresh one; a recipe's parent "
                                         "run continues that recipe where it stopped.", show_default=False)] = None,
    same_data: Annotated[bool, typer.Option("--same-data", help="No candidate that adds training rows.")] = False,
    prune: Annotated[Optional[bool], typer.Option("--prune/--no-prune", show_default=False, help="Stop a candidate "
                     "clearly losing to the incumbent at the same epoch (Optuna's MedianPruner; default on, or as "
                     "the --from recipe had it).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the recipe's JSON document.")] = False,
) -> None:
    """The recipe, automated: fix the largest gap, keep a change only when dev improves significantly, repeat.

    Each round trains the largest problem's top actions (what worked first), compares each with the incumbent,
    paired on dev, and keeps the largest significant drop; a clearly losing candidate is stopped early. Stops
    when every gap is within tolerance, inconclusive, nothing is left to try, or at --budget; the test error is
    read once, at the end. Runs are children of one MLflow `recipe` run; Ctrl-C writes the trail, --from continues.
    """
    from dlexp.render import terminal as render
    from dlexp.training.recipe import Stopped
    from dlexp.training.recipe import recipe as run_recipe

    quiet = _stdout_to_stderr() if as_json else contextlib.nullcontext()
    try:
        with quiet:  # with --json, progress lines go to stderr and only the document to stdout
            doc = run_recipe(list(overrides or []), budget=budget, k=candidates, start_from=start_from, keep_data=same_data,
                             prune=prune)
    except Stopped as stop:
        if not as_json and stop.document:
            render.recipe(stop.document)
        raise
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    render.recipe(doc)


def main() -> None:
    app(prog_name="dlexp")


if __name__ == "__main__":
    main()
