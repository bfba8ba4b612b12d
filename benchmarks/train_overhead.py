"""How much time does dlexp add around the model? `dlexp train` vs a bare PyTorch loop, side by side.

Workload (from the foundation issue): 60,000 x 64 inputs, 10 classes, MLP [256,256], batch 256, at 1 and
at 9 epochs. Prints each wall time (a fresh process each, best of --repeat), the per-epoch cost ratio
dlexp/bare (target <= 1.05) from the whole-run wall times, the same ratio in steady state (median time
between the per-epoch lines both print, which the start-up of either process does not blur), and the fixed
overhead of a 1-epoch run over the bare script (target <= 5 s).

    python benchmarks/train_overhead.py [--repeat 2] [--epochs 1 9]
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

N_TRAIN, N_FEATURES, N_CLASSES, HIDDEN, BATCH = 60_000, 64, 10, 256, 256
HERE = Path(__file__).resolve().parent


def wall(cmd: list[str], env: dict) -> tuple[float, list[float]]:
    """Wall time of the whole command, and the times between the epoch lines it prints (steady state)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stamps, lines = [], []
    for line in proc.stdout:  # both print one line per epoch as it ends
        lines.append(line)
        if line.startswith(("epoch ", "dev_error ")):
            stamps.append(time.perf_counter())
    err = proc.stderr.read()
    elapsed = time.perf_counter() - t
    if proc.wait() != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{''.join(lines)[-2000:]}\n{err[-2000:]}")
    return elapsed, [b - a for a, b in zip(stamps, stamps[1:])]


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
        gaps: dict[str, list[float]] = {"bare": [], "dlexp": []}
        for _ in range(args.repeat):
            for epochs in (lo, hi):
                for name, cmd in (("bare", bare), ("dlexp", dlexp)):
                    t, between = wall(cmd(epochs, env), env)
                    gaps[name] += between
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
    print(f"per-epoch ratio dlexp/bare: {ratio:.3f}  (target <= 1.05; from whole-run wall times)")
    steady = {n: statistics.median(g) for n, g in gaps.items()}
    print(f"steady-state epoch (median time between epoch lines): bare {steady['bare']:.3f} s   "
          f"dlexp {steady['dlexp']:.3f} s   ratio {steady['dlexp'] / steady['bare']:.3f}")
    print(f"fixed overhead of a {lo}-epoch run: {fixed:.2f} s  (target <= 5 s)")


if __name__ == "__main__":
    main()
