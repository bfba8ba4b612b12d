"""A 4-point learning curve through Hydra's basic launcher (one point after another) and through joblib
(two at a time): the wall time of each whole `dlexp curve` command, alternated, and the ratio (target:
joblib <= 0.7x basic on 2 cores).

Each command is `dlexp curve --points 4` over data.n_train (5,000 .. 40,000 rows of the synthetic source,
MLP [512,512], 10 epochs), with `hydra/launcher=joblib hydra.launcher.n_jobs=2` added for joblib. Both use
the same torch thread count (--threads, default 1: on a machine shared with other work, more threads than
free cores make every process spin).

    python benchmarks/launchers.py [--repeat 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CURVE = ["curve", "--points", "4", "data.n_train=40000", "model.hidden=[512,512]", "trainer.max_epochs=10",
         "trainer.accelerator=cpu"]
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}


def wall(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2, help="alternations of basic and joblib")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (OMP_NUM_THREADS)")
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in LAUNCHERS}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, DLEXP_RUNS_DIR=str(Path(tmp) / "runs"), OMP_NUM_THREADS=str(args.threads),
                   MKL_NUM_THREADS=str(args.threads))
        env.pop("DLEXP_TRACKING_URI", None)
        for i in range(args.repeat):
            order = list(LAUNCHERS) if i % 2 == 0 else list(reversed(LAUNCHERS))
            for name in order:
                cmd = [sys.executable, "-m", "dlexp", *CURVE, *LAUNCHERS[name]]
                t = wall(cmd, env)
                times[name].append(t)
                print(f"  [{i + 1}] {name:6s} {t:6.1f} s", flush=True)
    ratios = [j / b for b, j in zip(times["basic"], times["joblib"])]
    print(f"\n4-point curve (5,000 .. 40,000 rows, MLP [512,512], 10 epochs); {args.repeat} alternations, "
          f"{os.cpu_count()} cores, {args.threads} torch thread(s) per process, load average now "
          f"{os.getloadavg()[0]:.1f}")
    print(f"wall (median): basic {statistics.median(times['basic']):.1f} s   "
          f"joblib n_jobs=2 {statistics.median(times['joblib']):.1f} s")
    print(f"joblib/basic: median {statistics.median(ratios):.2f} (alternations: "
          f"{', '.join(f'{r:.2f}' for r in ratios)})  (target <= 0.7)")


if __name__ == "__main__":
    main()
