"""The recipe's wall time with Hydra's basic launcher (candidates one after the other) and with joblib
(`hydra/launcher=joblib hydra.launcher.n_jobs=2`: a round's two candidates side by side), on 2 cores.

Workload: `dlexp recipe experiment=underfit` on a small synthetic task, 2 candidates a round, a budget of
5 training runs (the start run, then two rounds of two). Each recipe runs in a fresh process and a fresh
store; the two launchers alternate, --repeat times each. Prints every wall time, the best of each and the
ratio joblib/basic (below 1: the parallel rounds pay off).

    python benchmarks/recipe.py [--repeat 1] [--budget 5] [--epochs 3] [--n-train 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def run(args: list[str], env: dict) -> tuple[float, dict]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dlexp", "recipe", *args, "--json"], env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"failed: dlexp recipe {' '.join(args)}\n{proc.stderr[-3000:]}")
    return elapsed, json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--budget", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=4000)
    args = ap.parse_args()
    task = ["experiment=underfit", f"data.n_train={args.n_train}", "data.n_train_dev=1000", "data.n_dev=1000",
            "data.n_test=1000", f"trainer.max_epochs={args.epochs}", "trainer.accelerator=cpu",
            "--budget", str(args.budget), "--candidates", "2"]
    print(f"cores: {os.cpu_count()}; dlexp recipe {' '.join(task)}", flush=True)
    times: dict[str, list[float]] = {"basic": [], "joblib": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name, extra in (("basic", []), ("joblib", JOBLIB)):
                env = dict(os.environ, DLEXP_RUNS_DIR=str(Path(tmp) / f"{name}-{i}" / "runs"))
                env.pop("DLEXP_TRACKING_URI", None)
                elapsed, doc = run(task + extra, env)
                times[name].append(elapsed)
                print(f"{name:>6}: {elapsed:6.1f} s  ({doc['budget']['used']} runs, "
                      f"{len(doc['trail'])} candidates, stopped: {doc['stopped_because']}, "
                      f"final dev error {doc['final']['errors']['dev']:.2%})", flush=True)
    basic, joblib = min(times["basic"]), min(times["joblib"])
    print(f"best: basic {basic:.1f} s, joblib {joblib:.1f} s; ratio joblib/basic = {joblib / basic:.2f}")


if __name__ == "__main__":
    main()
