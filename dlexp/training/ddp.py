"""Lightning's DDP for `dlexp train`: the ranks beyond the first, started by dlexp, watched by dlexp.

Lightning's DDP launcher (`_SubprocessScriptLauncher`) starts each further rank by re-running the
program's command line (`python <sys.argv[0]> <sys.argv[1:]>`, plus Hydra's run-dir overrides). A console
script such as `dlexp train`, or `python -m dlexp train`, is not a command line it can re-run, and a sweep's
`-m` would start a sweep in every rank. Lightning's own watch over the ranks ends the main process with
SIGKILL when one fails. So dlexp keeps Lightning's launcher and DDP strategy and changes only this:

- each further rank runs `python -m dlexp.training.ddp_rank SPEC`: SPEC is a pickle that the first rank writes
  into the run's folder with the job's composed config, its data splits (the very arrays rank 0 trains
  on, for a built-in source; the user's own Datasets are rebuilt by each rank from the config), the run's folder and the checkpoint to resume from. The rank trains through
  the same `fit()` and then ends: it records nothing, prints nothing to the terminal (its output goes to
  `rank-N.log` in the run's folder) and never measures the errors: rank 0 alone measures them, once, on
  the whole of each split, and records the one MLflow run;
- a rank that fails ends the command within seconds with one line naming it (the line its own log ends
  with), never a hang: rank 0's collective fails on its own under gloo, and where it does not
  (NCCL waits for its timeout) the command stops after a grace of a few seconds;
- a rank whose first rank went away (kill -9) stops by itself.

Lightning's collective SIGTERM, checkpointing (on rank 0) and `ckpt_path` resume are used as they are.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from pytorch_lightning.utilities.exceptions import SIGTERMException

from dlexp.errors import TrainingError

GRACE_S = 5.0       # how long rank 0 may take to fail by itself after another rank failed
_ENV_KEYS = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def attach(trainer, *, config: dict, splits, workdir: Path, resume_from: Path | None) -> None:
    """Give `trainer` dlexp's rank launcher where Lightning would re-run the command line (DDP's popen)."""
    launcher = trainer.strategy.launcher
    if not isinstance(launcher, _SubprocessScriptLauncher) or isinstance(launcher, RankLauncher):
        return
    from dlexp.data import Splits

    # built-in sources: the very arrays rank 0 trains on; the user's own Datasets: each rank rebuilds them
    # from the config (`dlexp.data.load`), so nothing but the config is sent
    spec = {"config": config, "splits": splits if isinstance(splits, Splits) else None, "workdir": str(workdir),
            "resume_from": str(resume_from) if resume_from else None}
    # Lightning has no public setter for a strategy's launcher; `_configure_launcher` sets this attribute
    trainer.strategy._launcher = RankLauncher(launcher.cluster_environment, launcher.num_processes,
                                              launcher.num_nodes, spec=spec, folder=workdir / "ranks")


class RankLauncher(_SubprocessScriptLauncher):
    """`_SubprocessScriptLauncher` whose ranks run `python -m dlexp.training.ddp_rank SPEC`, watched by dlexp."""

    def __init__(self, cluster_environment, num_processes: int, num_nodes: int, *, spec: dict, folder: Path):
        super().__init__(cluster_environment, num_processes, num_nodes)
        self.spec, self.folder = spec, folder
        self.failure: str | None = None
        self._done = threading.Event()

    def launch(self, function, *args, trainer=None, **kwargs):
        self.cluster_environment.validate_settings(num_devices=self.num_processes, num_nodes=self.num_nodes)
        saved = {k: os.environ.get(k) for k in _ENV_KEYS}
        watcher = None
        if not self.cluster_environment.creates_processes_externally:
            self._call_children_scripts()
            watcher = threading.Thread(target=self._watch, name="dlexp-ddp-ranks", daemon=True)
            watcher.start()
        from lightning_fabric.utilities.distributed import _set_num_threads_if_needed

        _set_num_threads_if_needed(num_processes=self.num_processes)
        stopping = False
        try:
            return function(*args, **kwargs)
        except SIGTERMException:
            # Ctrl-C / SIGTERM: every rank stops at the same step and writes the checkpoint together in
            # Lightning's exception hooks, which run after this; each rank then ends by itself
            stopping = True
            raise
        except BaseException:
            if self.procs:
                self._wait_children(GRACE_S)  # the rank that broke rank 0's collective: did it fail?
                self.kill(signal.SIGKILL)
            if self.failure:
                raise TrainingError(self.failure) from None
            raise
        finally:
            self._done.set()
            if self.procs and not stopping:
                self._wait_children(30.0)
                self.kill(signal.SIGKILL)
            # a later job of a sweep, in this process, must start its own ranks on a fresh port
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def kill(self, signum) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def _call_children_scripts(self) -> None:
        self._check_can_spawn_children()
        env = self.cluster_environment
        os.environ["MASTER_ADDR"] = env.main_address
        os.environ["MASTER_PORT"] = str(env.main_port)
        os.environ["NODE_RANK"] = str(env.node_rank())
        os.environ["LOCAL_RANK"] = str(env.local_rank())
        os.environ["WORLD_SIZE"] = str(self.num_processes * self.num_nodes)
        self.folder.mkdir(parents=True, exist_ok=True)
        spec_path = self.folder / "spec.pkl"
        with open(spec_path, "wb") as f:
            pickle.dump(dict(self.spec, parent=os.getpid()), f, protocol=pickle.HIGHEST_PROTOCOL)
        self.logs = []
        for local_rank in range(1, self.num_processes):
            child_env = dict(os.environ, LOCAL_RANK=str(local_rank))
            log = self.folder / f"rank-{local_rank}.log"
            self.logs.append(log)
            with open(log, "w") as out:
                # a session of its own: Ctrl-C reaches rank 0 only, which stops the others with Lightning's SIGTERM
                self.procs.append(subprocess.Popen([sys.executable, "-m", "dlexp.training.ddp_rank", str(spec_path)],
                                                   env=child_env, stdin=subprocess.DEVNULL, stdout=out,
                                                   stderr=subprocess.STDOUT, start_new_session=True))

    def _wait_children(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p.poll() is None for p in self.procs):
            self._check()
            if self.failure:
                return
            time.sleep(0.1)
        self._check()

    def _check(self) -> None:
        if self.failure:
            return
        for rank, (proc, log) in enumerate(zip(self.procs, self.logs), start=1):
            code = proc.poll()
            if code not in (None, 0):
                if code < 0:  # a signal: the rank's own output does not say why
                    self.failure = f"DDP rank {rank} was killed by {signal.Signals(-code).name} (its output: {log})"
                else:
                    self.failure = f"DDP rank {rank} failed: {_last_line(log)} (its output: {log})"
                return

    def _watch(self) -> None:
        """Rank 0's collective fails by itself when a gloo peer dies; if it is still stuck after a grace
        (NCCL, or a rank that failed before joining), end the command here, with its one line."""
        while not self._done.wait(0.5):
            self._check()
            if self.failure:
                if self._done.wait(GRACE_S):
                    return
                self.kill(signal.SIGKILL)
                print(f"dlexp: error: {self.failure}", file=sys.stderr, flush=True)
                os._exit(1)  # the tracking process sees the training process gone and ends the run FAILED


def _last_line(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    return lines[-1][:500] if lines else "no output"
