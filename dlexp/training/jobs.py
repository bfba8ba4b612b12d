"""A job's side of `dlexp train`: what the command that launched it says (its folder, named in the job's
environment by Hydra's `hydra.job.env_set`), the result it hands back, and where it runs (Ray, submitit).

The command's side (`launch.run_jobs`) writes `context.json` into that folder and reads each job's
`job-NNNN.pkl` once Hydra returns; a job (`run.main`) reads the one and writes the other, in whatever process
the launcher ran it. Neither side imports the other: both import this module.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
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


def folder() -> Path | None:
    value = os.environ.get(JOBS_DIR)
    return Path(value) if value else None


def context(num: int = 0) -> dict:
    """What the command that launched job `num` tells it: {"tags": {...}, "resume": {...} | None, "quiet": ...},
    its tags being those of every job and its own."""
    where = folder()
    if where is None or not (where / "context.json").is_file():
        return {"tags": {}, "resume": None}
    ctx = json.loads((where / "context.json").read_text())
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
    where = folder()
    return where is not None and (where / "interrupted").exists()


def save(result: JobResult) -> None:
    """Hand this job's result to the command (nothing to do when no command is listening)."""
    where = folder()
    if where is None:
        return
    from dlexp.training.signals import Interrupted

    if isinstance(result.exc, Interrupted):
        (where / "interrupted").touch()
    result.log = submitit_log()
    try:
        data = pickle.dumps(result)
    except Exception:  # an exception that does not pickle: keep its line and exit code
        code = getattr(result.exc, "exit_code", 1)
        exc = DlexpError(result.error or "job failed")
        exc.exit_code = code
        result.exc = exc
        data = pickle.dumps(result)
    tmp = where / f".job-{result.num:04d}-{os.getpid()}.tmp"
    tmp.write_bytes(data)
    tmp.replace(where / f"job-{result.num:04d}.pkl")
