"""The `dlexp` command. Each command parses, calls one function, renders; a DlexpError becomes one line.

Imports here stay light (Typer only): torch, Lightning, MLflow and rich load inside the command that
needs them, so `dlexp --help` answers at once and `dlexp diagnose` never loads torch.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Annotated, Optional

import typer

from dlexp.errors import ConfigError, DlexpError

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
    from dlexp.store import scrub

    typer.echo(f"dlexp: error: {scrub(message)}", err=True)
    raise typer.Exit(code)


def friendly(fn):
    """Turn dlexp's errors into one line and an exit code; a traceback only with DLEXP_DEBUG=1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except DlexpError as exc:
            if _debug():
                raise
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            if _debug():
                raise
            typer.echo("dlexp: interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if _debug():
                raise
            from dlexp.config import explain

            if type(exc).__module__.split(".")[0] in ("hydra", "omegaconf"):
                _fail(explain(exc), ConfigError.exit_code)
            _fail(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''} "
                  "(set DLEXP_DEBUG=1 for the traceback)", 1)

    return wrapper


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
    """
    from dlexp.experiment import run_hydra

    reports = run_hydra((["-m"] if multirun else []) + list(overrides or []), resume=resume)
    if len(reports) == 1 and reports[0].diagnosis.verdict == "diverged":
        d = reports[0].diagnosis
        typer.echo(f"dlexp: training diverged (non-finite loss at step {d.diverged_at}); run {reports[0].run_id} "
                   "is tagged dlexp.verdict=diverged; lower optimizer.lr or set optimizer.grad_clip", err=True)
        raise typer.Exit(EXIT_DIVERGED)


@app.command()
@friendly
def diagnose(
    run_id: Annotated[Optional[str], typer.Argument(help="Run to diagnose; default: the latest run.",
                                                    show_default=False)] = None,
    human: Annotated[Optional[float], typer.Option(help="Human-level error (re-judges a run, or what-if).")] = None,
    train: Annotated[Optional[float], typer.Option(help="What-if: training error.")] = None,
    train_dev: Annotated[Optional[float], typer.Option("--train-dev", help="What-if: train-dev error.")] = None,
    dev: Annotated[Optional[float], typer.Option(help="What-if: dev error.")] = None,
    test: Annotated[Optional[float], typer.Option(help="What-if: test error.")] = None,
    tolerance: Annotated[Optional[float], typer.Option(
        help="Smallest gap that counts as a problem (default: the run's diagnosis.tolerance, or 0.01).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON document.")] = False,
    uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI (default: $DLEXP_TRACKING_URI, else runs/mlflow.db).")] = None,
) -> None:
    """Diagnose a finished run again (no torch import), or figures typed in (what-if mode).

    What-if: dlexp diagnose --human 0.01 --train 0.08 --train-dev 0.09 --dev 0.10 --test 0.11
    """
    from dlexp.diagnosis import DEFAULT_TOLERANCE, Report, SplitErrors, check_error
    from dlexp.diagnosis import diagnose as run_diagnosis
    from dlexp.diagnosis import recommend

    figures = {"train": train, "train-dev": train_dev, "dev": dev, "test": test}
    for name, value in {"human": human, **figures}.items():
        if value is not None:
            try:
                check_error(name, value)
            except ValueError as exc:
                raise ConfigError(f"--{name}: {exc}") from None
    if tolerance is not None and tolerance < 0:
        raise ConfigError(f"--tolerance must be >= 0, got {tolerance}")

    if any(v is not None for v in figures.values()):
        missing = [f"--{k}" for k, v in {"human": human, **figures}.items() if v is None]
        if run_id is not None or missing:
            raise ConfigError("what-if mode takes no run id and needs all of --human --train --train-dev --dev "
                              f"--test (missing: {', '.join(missing) or 'none'})")
        errors = SplitErrors(human=human, train=train, train_dev=train_dev, dev=dev, test=test)
        d = run_diagnosis(errors, tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance)
        report = Report(d, recommend(d, None))
        title = "what-if"
    else:
        from dlexp import tracking

        run = tracking.load_run(uri, run_id)
        doc, config = run["document"], run["config"] or {}
        e = run["errors"]
        errors = SplitErrors(human=e["human"] if human is None else human, train=e["train"],
                             train_dev=e["train_dev"], dev=e["dev"], test=e["test"])
        if tolerance is None:
            tolerance = (config.get("diagnosis") or {}).get("tolerance", doc.get("tolerance", DEFAULT_TOLERANCE))
        d = run_diagnosis(errors, tolerance=tolerance, diverged_at=doc.get("diverged_at"),
                          diverged=doc.get("verdict") == "diverged")
        report = Report(d, recommend(d, config or None, overrides=run["overrides"]), run_id=run["run_id"],
                        sizes=doc.get("sizes") or {}, task=doc.get("task", "classification"),
                        metric=doc.get("metric", "error_rate"))
        data, model = (config.get("data") or {}).get("name"), (config.get("model") or {}).get("name")
        title = f"{model} on {data}" if data and model else None
    if as_json:
        typer.echo(json.dumps(report.document(), indent=2))
        return
    from dlexp import report as render

    render.diagnosis(report, title=title)


@app.command()
@friendly
def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI (default: $DLEXP_TRACKING_URI, else runs/mlflow.db).")] = None,
) -> None:
    """Recent runs, newest first: id, status, data, model, the four errors, the verdict."""
    if limit <= 0:
        raise ConfigError(f"--limit must be positive, got {limit}")
    from dlexp import tracking

    rows = tracking.list_runs(uri, limit=limit)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from dlexp import report as render

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
    """MLflow's UI on dlexp's store; prints the URL, Ctrl-C stops it."""
    import subprocess

    from dlexp.store import redact, store_uri

    if not 0 < port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    target = store_uri(uri)
    if target.startswith("sqlite:///") and not os.path.exists(target[len("sqlite:///"):]):
        raise DlexpError(f"no dlexp runs at {target[len('sqlite:///'):]} yet; run `dlexp train` first "
                         "(or set DLEXP_RUNS_DIR)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"dlexp: warning: serving on {host}: anyone who can reach this address can read your runs",
                   err=True)
    typer.echo(f"MLflow UI for {redact(target)} at http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}"
               " (Ctrl-C stops it)")
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", target,
           "--host", host, "--port", str(port)]
    # MLflow's Host-header (DNS rebinding) and cross-origin checks stay on: dlexp never passes
    # --disable-security-middleware, and drops the environment variables that would turn them off or open them
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE", "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS")}
    try:
        raise typer.Exit(subprocess.call(cmd, env=env))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def main() -> None:
    app(prog_name="dlexp")


if __name__ == "__main__":
    main()
