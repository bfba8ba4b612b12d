"""The jobs of `dlexp train` through Hydra, and their results back to the command.

`run_jobs` hands a command line to the `@hydra.main` entry (`dlexp.training.run.main`), so every job goes
through Hydra's own machinery: overrides, `-m` sweeps, `--config-dir`, and whichever launcher is configured
(basic, joblib, ray, submitit). A list of jobs — each its own override list, as seed groups, curves and recipe rounds
need — goes through dlexp's list sweeper (`hydra/sweeper=dlexp_jobs`) in one batch.

Results cross back through files, not module state: the command makes a folder, names it in each job's
environment with Hydra's `hydra.job.env_set` (applied by every launcher, in whatever process runs the job),
and puts there what the jobs need to know (`context.json`: tags for their runs, a run to resume). Each job
writes its own result (`job-NNNN.pkl`: the report, or the error) and the command reads them all once Hydra
returns. A job that fails is one line in the results, whatever process it ran in.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dlexp.diagnosis import Report
from dlexp.errors import DlexpError

JOBS_DIR = "DLEXP_JOBS_DIR"  # the folder of the command that launched this job (set by hydra.job.env_set)


@dataclass
class JobResult:
    overrides: list[str]
    report: Report | None = None
    run_id: str | None = None
    error: str | None = None              # one line, when the job failed
    exc: BaseException | None = field(default=None, repr=False)  # the job's exception, to re-raise as it was
    num: int = 0                          # the job's index in its sweep
    log: str | None = None                # where the job's own output went, when not to the command's terminal
    sweep_dir: str | None = None          # a sweep's folder (Hydra's multirun.yaml), as the job saw it

    @property
    def ok(self) -> bool:
        return self.error is None


def run_jobs(argv: list[str], *, jobs: list[list[str]] | None = None, tags: dict | None = None,
             job_tags: list[dict] | None = None, resume: dict | None = None, quiet: bool = False) -> list[JobResult]:
    """Run `dlexp train ARGV` through Hydra; with `jobs`, one job per override list (after ARGV's overrides)
    as one multirun through the configured launcher. `tags` go on every job's MLflow run, `job_tags[i]` on
    job i's alone (its name, its seed or size), from the run's start; `resume` (from
    `tracking.runs.resume_info`) continues that run; `quiet` leaves out each job's diagnosis table (the
    recipe prints its own trail). Returns the jobs' results in job order."""
    from dlexp.training import run

    _hint_credentials([*argv, *(o for job in jobs or [] for o in job)])
    if jobs is not None:
        _register_sweeper()
    folder = Path(tempfile.mkdtemp(prefix="dlexp-jobs-"))
    try:
        (folder / "context.json").write_text(json.dumps({"tags": tags or {}, "job_tags": job_tags or [],
                                                         "resume": resume, "quiet": quiet}))
        args = [a for a in argv if jobs is None or a not in ("-m", "--multirun")]
        ours = [f"++hydra.job.env_set.{JOBS_DIR}={folder}"]
        if jobs is not None:
            (folder / "jobs.json").write_text(json.dumps([list(j) for j in jobs]))
            ours += ["hydra/sweeper=dlexp_jobs", f"hydra.sweeper.jobs_file={folder / 'jobs.json'}"]
            args = ["-m", *args]
        args = with_overrides(args, ours)
        saved = sys.argv
        sys.argv = ["dlexp train", *args]
        try:
            run.main()
        finally:
            sys.argv = saved
        results = [pickle.loads(p.read_bytes()) for p in folder.glob("job-*.pkl")]
        if _HINTED:  # Hydra's record of the sweep (multirun.yaml) holds the overrides too
            _scrub_files({Path(r.sweep_dir) / "multirun.yaml" for r in results if r.sweep_dir})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return sorted(results, key=lambda r: r.num)


_HINTED: list[bool] = []


def _hint_credentials(args: list[str]) -> None:
    """One line, once per command, when an override holds a URL with a password: it is masked in the store."""
    from dlexp.tracking.store import CREDENTIALS_HINT, has_credentials

    if not _HINTED and has_credentials(args):
        _HINTED.append(True)
        print(f"dlexp: note: {CREDENTIALS_HINT}", file=sys.stderr, flush=True)


def _scrub_files(paths) -> None:
    from dlexp.tracking.store import scrub

    for path in paths:
        if path.is_file():
            path.write_text(scrub(path.read_text()))


# Hydra's flags that take a value: what follows one of them is not an override
VALUED = {"--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn", "--cfg", "-c", "--package", "-p",
           "--experimental-rerun"}


def with_overrides(argv: list[str], extra: list[str]) -> list[str]:
    """`argv` with `extra` overrides placed right after its own: Hydra's command line takes its overrides as
    one run of positional arguments, so they must not be split by a flag.

    >>> with_overrides(["--config-dir", "my", "model=tiny", "--cfg", "job"], ["seed=1"])
    ['--config-dir', 'my', 'model=tiny', 'seed=1', '--cfg', 'job']
    >>> with_overrides(["-m", "--cfg", "job"], ["seed=1"])
    ['seed=1', '-m', '--cfg', 'job']
    """
    last = -1
    for i, arg in enumerate(argv):
        if not arg.startswith("-") and not (i > 0 and argv[i - 1] in VALUED):
            last = i
    return argv[:last + 1] + list(extra) + argv[last + 1:]


def _register_sweeper() -> None:
    """Make sure Hydra knows dlexp's list sweeper. Hydra finds plugins by walking the `hydra_plugins`
    package, which an editable install (`pip install -e .`) hides behind an import hook that cannot be
    walked; importing the module registers its config, and this registers its class."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.dlexp_sweeper.jobs_sweeper import JobsSweeper

    name = f"{JobsSweeper.__module__}.{JobsSweeper.__name__}"
    Plugins.instance().class_name_to_class.setdefault(name, JobsSweeper)


# --------------------------------------------------------------------------------------- the job's side


def _folder() -> Path | None:
    value = os.environ.get(JOBS_DIR)
    return Path(value) if value else None


def context(num: int = 0) -> dict:
    """What the command that launched job `num` tells it: {"tags": {...}, "resume": {...} | None, "quiet": ...},
    its tags being those of every job and its own."""
    folder = _folder()
    if folder is None or not (folder / "context.json").is_file():
        return {"tags": {}, "resume": None}
    ctx = json.loads((folder / "context.json").read_text())
    own = ctx.pop("job_tags", None) or []
    if num < len(own):
        ctx["tags"] = {**(ctx.get("tags") or {}), **own[num]}
    return ctx


def in_ray_worker() -> bool:
    """Whether this job runs in a Ray worker (`hydra/launcher=ray`): Ray prefixes and de-duplicates each
    line of each job, so such a job prints one line; its whole diagnosis is in its run."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return False
    return ray.get_runtime_context().worker.mode == ray.WORKER_MODE


def submitit_log() -> str | None:
    """The file this job's output goes to when it runs through submitit (`hydra/launcher=submitit_local` or
    `submitit_slurm`): its lines never reach the command's terminal."""
    if not os.environ.get("SUBMITIT_EXECUTOR") or "submitit" not in sys.modules:
        return None
    import submitit

    return str(submitit.JobEnvironment().paths.stdout)


def ray_driver() -> bool:
    """Whether this command started (or joined) a Ray cluster to run its jobs."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized() and not in_ray_worker()


def interrupted() -> bool:
    """Whether an earlier job of this command was stopped by Ctrl-C / SIGTERM (a sweep stops there)."""
    folder = _folder()
    return folder is not None and (folder / "interrupted").exists()


def save(result: JobResult) -> None:
    """Hand this job's result to the command (nothing to do when no command is listening)."""
    folder = _folder()
    if folder is None:
        return
    from dlexp.training.signals import Interrupted

    if isinstance(result.exc, Interrupted):
        (folder / "interrupted").touch()
    result.log = submitit_log()
    try:
        data = pickle.dumps(result)
    except Exception:  # an exception that does not pickle: keep its line and exit code
        code = getattr(result.exc, "exit_code", 1)
        exc = DlexpError(result.error or "job failed")
        exc.exit_code = code
        result.exc = exc
        data = pickle.dumps(result)
    tmp = folder / f".job-{result.num:04d}-{os.getpid()}.tmp"
    tmp.write_bytes(data)
    tmp.replace(folder / f"job-{result.num:04d}.pkl")
