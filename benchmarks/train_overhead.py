"""How much time does dlexp add around the model? `dlexp train` vs a bare PyTorch loop, side by side.

Workload (from the foundation issue): 60,000 x 64 inputs, 10 classes, MLP [256,256], batch 256, at 1 and
at 9 epochs. Prints each wall time (a fresh process each, best of --repeat), the per-epoch cost ratio
dlexp/bare (target <= 1.05) and the fixed overhead of a 1-epoch run over the bare script (target <= 5 s).

    python benchmarks/train_overhead.py [--repeat 2] [--epochs 1 9]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_TRAIN, N_FEATURES, N_CLASSES, HIDDEN, BATCH = 60_000, 64, 10, 256, 256
HERE = Path(__file__).resolve().parent


def wall(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def bare(epochs: int, env: dict) -> list[str]:
    return [sys.executable, str(HERE / "bare_loop.py"), str(epochs), str(N_TRAIN), str(N_FEATURES),
            str(N_CLASSES), str(HIDDEN), str(BATCH)]


def dlexp(epochs: int, env: dict) -> list[str]:
    return [sys.executable, "-m", "dlexp", "train", f"trainer.max_epochs={epochs}", f"data.n_train={N_TRAIN}",
            f"data.n_features={N_FEATURES}", f"data.n_classes={N_CLASSES}",
            f"model.hidden=[{HIDDEN},{HIDDEN}]", f"data.batch_size={BATCH}", "trainer.accelerator=cpu"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--epochs", type=int, nargs=2, default=[1, 9])
    args = ap.parse_args()
    lo, hi = args.epochs
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, DLEXP_RUNS_DIR=str(Path(tmp) / "runs"))
        env.pop("DLEXP_TRACKING_URI", None)
        subprocess.run(dlexp(1, env)[:3] + ["--help"], env=env, capture_output=True)  # warm the file cache
        times: dict[tuple[str, int], float] = {}
        for _ in range(args.repeat):
            for epochs in (lo, hi):
                for name, cmd in (("bare", bare), ("dlexp", dlexp)):
                    t = wall(cmd(epochs, env), env)
                    key = (name, epochs)
                    times[key] = min(t, times.get(key, float("inf")))
                    print(f"  {name:5s} {epochs} epoch(s): {t:6.2f} s", flush=True)
    per_epoch = {n: (times[(n, hi)] - times[(n, lo)]) / (hi - lo) for n in ("bare", "dlexp")}
    ratio = per_epoch["dlexp"] / per_epoch["bare"]
    fixed = times[("dlexp", lo)] - times[("bare", lo)]
    print(f"\nworkload: {N_TRAIN} x {N_FEATURES}, {N_CLASSES} classes, MLP [{HIDDEN},{HIDDEN}], batch {BATCH}; "
          f"best of {args.repeat}, {os.cpu_count()} cores")
    print(f"wall, {lo} epoch:  bare {times[('bare', lo)]:.2f} s   dlexp {times[('dlexp', lo)]:.2f} s")
    print(f"wall, {hi} epochs: bare {times[('bare', hi)]:.2f} s   dlexp {times[('dlexp', hi)]:.2f} s")
    print(f"per epoch: bare {per_epoch['bare']:.3f} s   dlexp {per_epoch['dlexp']:.3f} s")
    print(f"per-epoch ratio dlexp/bare: {ratio:.3f}  (target <= 1.05)")
    print(f"fixed overhead of a {lo}-epoch run: {fixed:.2f} s  (target <= 5 s)")


if __name__ == "__main__":
    main()
