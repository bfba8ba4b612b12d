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
from pathlib import Path

from dlexp.diagnosis import Report
from dlexp.errors import ConfigError, DlexpError
from dlexp.training.jobs import JOBS_DIR, JobResult, ray_driver
from dlexp.training.signals import interruption

def run_jobs(argv: list[str], *, jobs: list[list[str]] | None = None, tags: dict | None = None,
             job_tags: list[dict] | None = None, resume: dict | None = None, quiet: bool = False) -> list[JobResult]:
    """Run `dlexp train ARGV` through Hydra; with `jobs`, one job per override list (after ARGV's overrides)
    as one multirun through the configured launcher. `tags` go on every job's MLflow run, `job_tags[i]` on
    job i's alone (its name, its seed or size), from the run's start; `resume` (from
    `tracking.runs.resume_info`) continues that run; `quiet` leaves out each job's diagnosis table (the
    recipe prints its own trail). Returns the jobs' results in job order."""
    from dlexp.training import run  # the job: one training run through Hydra

    _hint_credentials([*argv, *(o for job in jobs or [] for o in job)])
    if jobs is not None:
        _register_sweeper()
    folder = Path(tempfile.mkdtemp(prefix="dlexp-jobs-"))
    try:
        (folder / "context.json").write_text(json.dumps({"tags": tags or {}, "job_tags": job_tags or [],
                                                         "resume": resume, "quiet": quiet}))
        args = [a for a in argv if jobs is None or a not in ("-m", "--multirun")]
        if jobs is not None:
            flags, jobs = flags_out(jobs)
            args += [f for f in flags if f not in args]
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


def flags_out(jobs: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """Hydra's own flags a job list carries (a stored command's `--config-dir=DIR`: the user's config folder),
    once each, and the jobs without them: a job holds overrides only, the flags go on the command line.

    >>> flags_out([["--config-dir=conf", "model=mynet", "seed=1"], ["-cd", "conf", "model=mynet"]])
    (['--config-dir=conf', '-cd', 'conf'], [['model=mynet', 'seed=1'], ['model=mynet']])
    """
    flags, out = [], []
    for job in jobs:
        kept, skip = [], False
        for i, arg in enumerate(job):
            if skip:
                skip = False
                continue
            if arg.startswith("-") and arg not in ("-m", "--multirun"):
                pair = [arg, job[i + 1]] if arg in VALUED and i + 1 < len(job) else [arg]
                skip = len(pair) == 2
                if not any(flags[j:j + len(pair)] == pair for j in range(len(flags))):
                    flags += pair
                continue
            kept.append(arg)
        out.append(kept)
    return flags, out


def _register_sweeper() -> None:
    """Make sure Hydra knows dlexp's list sweeper. Hydra finds plugins by walking the `hydra_plugins`
    package, which an editable install (`pip install -e .`) hides behind an import hook that cannot be
    walked; importing the module registers its config, and this registers its class."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.dlexp_sweeper.jobs_sweeper import JobsSweeper

    name = f"{JobsSweeper.__module__}.{JobsSweeper.__name__}"
    Plugins.instance().class_name_to_class.setdefault(name, JobsSweeper)


def run_hydra(argv: list[str], *, resume: str | None = None) -> list[Report]:
    """`dlexp train ARGV`: the jobs' reports; a single job's error is raised as it was, a sweep's failures
    as one error naming how many jobs failed (each job printed its own line).

    `resume`: a run id; its recorded overrides come first, `argv`'s override them, and training continues
    from the run's last checkpoint into the same MLflow run.
    """
    os.environ["HYDRA_FULL_ERROR"] = "1"  # composition errors reach dlexp, which prints one line
    info = None
    if resume is not None:
        from dlexp.tracking import runs as tracking_runs

        if "-m" in argv or "--multirun" in argv:
            raise DlexpError("--resume continues one run; it cannot be combined with -m/--multirun")
        given = [a.split("=", 1)[1] for a in argv if a.startswith(("tracking.uri=", "+tracking.uri="))]
        info = tracking_runs.resume_info(given[-1] if given else None, resume)
        from dlexp.training.fit import load_checkpoint

        # a damaged or tampered checkpoint is refused before the run is touched
        checkpoint = load_checkpoint(info["checkpoint"]) if info["checkpoint"] else {}
        info["config"] = checkpoint.get("hyper_parameters", {}).get("config", {})
        keys = {_override_key(a) for a in argv if "=" in a}
        info["new_keys"] = sorted(keys)
        argv = [o for o in info["overrides"] if _override_key(o) not in keys] + list(argv)
        epochs = [a.split("=", 1)[1] for a in argv if _override_key(a) == "trainer.max_epochs"]
        done = checkpoint.get("epoch")
        if epochs and isinstance(done, int) and epochs[-1].lstrip("-").isdigit() and 0 < int(epochs[-1]) < done:
            raise ConfigError(f"run {info['run_id']} has already trained {done} epochs, more than "
                              f"trainer.max_epochs={epochs[-1]}; resume with trainer.max_epochs above {done} to "
                              "train it longer")
        start = info["checkpoint"] or "its start (it stopped before its first epoch ended)"
        print(f"dlexp: resuming run {info['run_id']} ({info['status']}) from {start}", flush=True)
    results = run_jobs(argv, resume=info)
    elsewhere = [r.log for r in results if r.log]  # submitit: each job's output went to its own file
    if ray_driver() or elsewhere:  # one line per job and a summary, from the results (each run holds the rest)
        from dlexp.render import terminal as render

        if ray_driver():
            import ray

            ray.shutdown()  # Ray's own last lines come before dlexp's
        for r in results:
            if r.report is not None:
                print(render.job_line(r.num, r.overrides, r.report), flush=True)
        render.jobs(results)
        if elsewhere:
            print(f"each job's own output: {Path(elsewhere[0]).parent.parent}/*/*_log.out (and _log.err)", flush=True)
    failed = [r for r in results if not r.ok]
    done = [r.report for r in results if r.ok and r.report is not None]
    if failed:
        from dlexp.training.signals import Interrupted

        if len(failed) == 1 and not done:
            raise failed[0].exc or DlexpError(failed[0].error)
        interrupted = next((r.exc for r in failed if isinstance(r.exc, Interrupted)), None)
        if interrupted is not None:
            raise interrupted
        if interruption(None) is not None:
            raise Interrupted(interruption(None))
        raise DlexpError(f"{len(failed)} of {len(results)} jobs failed: "
                         + "; ".join(f"{' '.join(r.overrides) or '(no overrides)'} ({r.error})" for r in failed))
    return done


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")
