"""A 4-point learning curve through Hydra's basic launcher (one point after another) and through joblib
(two at a time): the wall time of each whole `dlexp curve` command, alternated, and the ratio (target:
joblib <= 0.7x basic on 2 cores).

Each command is `dlexp curve --points 4` over data.n_train (5,000 .. 40,000 rows of the synthetic source,
MLP [512,512], 10 epochs), with `hydra/launcher=joblib hydra.launcher.n_jobs=2` added for joblib. Both use
the same torch thread count (--threads, default 1: on a machine shared with other work, more threads than
free cores make every process spin).

    python benchmarks/launchers.py [--repeat 2] [--threads 1] [--jobs 2] [--points 4] [--epochs 10]
        [--n-train 40000] [--json FIGURES.json]

--jobs N runs joblib with N workers; on a machine with more cores, `--jobs $(nproc) --points $(nproc)` gives
every core a point (more than 4 points are evenly spaced up to --n-train).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def curve(points: int, n_train: int, epochs: int) -> list[str]:
    """4 points or fewer: halving down from n_train (5,000 .. 40,000 rows by default); more: evenly spaced."""
    sizes = ["--points", str(points)] if points <= 4 else \
        ["--fractions", ",".join(f"{(i + 1) / points:.4g}" for i in range(points))]
    return ["curve", *sizes, f"data.n_train={n_train}", "model.hidden=[512,512]", f"trainer.max_epochs={epochs}",
            "trainer.accelerator=cpu"]


def launchers(jobs: int) -> dict[str, list[str]]:
    return {"basic": [], "joblib": ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]}


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
    ap.add_argument("--jobs", type=int, default=2, help="joblib workers (hydra.launcher.n_jobs; default 2)")
    ap.add_argument("--points", type=int, default=4, help="points of the curve (default 4)")
    ap.add_argument("--epochs", type=int, default=10, help="epochs per point (default 10)")
    ap.add_argument("--n-train", type=int, default=40_000, help="rows of the largest point (default 40,000)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here (after each alternation)")
    args = ap.parse_args()
    LAUNCHERS = launchers(args.jobs)
    CURVE = curve(args.points, args.n_train, args.epochs)
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
            if args.json:
                args.json.write_text(json.dumps(summary(times, args)))
    f = summary(times, args)
    print(f"\n{f['workload']}; {args.repeat} alternations, "
          f"{os.cpu_count()} cores, {args.threads} torch thread(s) per process, load average now "
          f"{os.getloadavg()[0]:.1f}")
    print(f"wall (median): basic {f['basic_s']:.1f} s   joblib n_jobs={args.jobs} {f['joblib_s']:.1f} s")
    print(f"joblib/basic: median {f['ratio']:.2f} (alternations: "
          f"{', '.join(f'{r:.2f}' for r in f['ratios'])})  (target <= 0.7)")


def summary(times: dict[str, list[float]], args) -> dict:
    """Medians over the alternations both launchers finished."""
    done = min(len(v) for v in times.values())
    ratios = [j / b for b, j in zip(times["basic"][:done], times["joblib"][:done])]
    return {"workload": f"{args.points}-point curve (up to {args.n_train:,} rows, MLP [512,512], {args.epochs} epochs)",
            "jobs": args.jobs, "alternations": done, "basic_s": statistics.median(times["basic"][:done]),
            "joblib_s": statistics.median(times["joblib"][:done]), "ratio": statistics.median(ratios), "ratios": ratios}


if __name__ == "__main__":
    main()
