"""How much time does dlexp add around the model? `dlexp train` vs a bare PyTorch loop, whole commands, alternated.

Workload (from the foundation issue): 60,000 x 64 inputs, 10 classes, MLP [256,256], batch 256, at 1 and
at 9 epochs. Each alternation runs the bare script and `dlexp train` (fresh processes) at both lengths, one
after the other, so that a machine shared with other work loads both alike. Prints every wall time, then:
- the per-epoch cost ratio dlexp/bare from whole-run wall times, (T9 - T1) / 8 each (target <= 1.05);
- the same ratio in steady state (median time between the per-epoch lines both print, which start-up and
  the final passes do not blur);
- the fixed overhead of a 1-epoch run over the bare script (target <= 4 s);
- the same figures in CPU seconds of each command's own process (read from /proc at each epoch line, and
  from wait4 at the end), which a machine loaded by other work does not stretch as it does wall time.
Both do the same work per epoch: the training steps, then the dev error in eval mode; dlexp also writes
its best/last checkpoints and sends the epoch to its tracking process. The median over alternations is
the figure; the best-of figures follow it.

    python benchmarks/train_overhead.py [--repeat 3] [--epochs 1 9] [--threads 1] [--steps-per-call K]
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


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far, from /proc (0.0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def wall(cmd: list[str], env: dict) -> tuple[float, list[float], float, list[float]]:
    """Wall time of the whole command and the times between the epoch lines it prints (steady state); the
    same two in CPU seconds of the command's own process, which a loaded machine does not stretch."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stamps, cpu_stamps, lines = [], [], []
    for line in proc.stdout:  # both print one line per epoch as it ends
        lines.append(line)
        if line.startswith(("epoch ", "dev_error ")):
            stamps.append(time.perf_counter())
            cpu_stamps.append(_cpu(proc.pid))
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{''.join(lines)[-2000:]}\n{err[-2000:]}")
    return (elapsed, [b - a for a, b in zip(stamps, stamps[1:])], usage.ru_utime + usage.ru_stime,
            [b - a for a, b in zip(cpu_stamps, cpu_stamps[1:])])


def bare(epochs: int, env: dict) -> list[str]:
    return [sys.executable, str(HERE / "bare_loop.py"), str(epochs), str(N_TRAIN), str(N_FEATURES),
            str(N_CLASSES), str(HIDDEN), str(BATCH)]


def dlexp(epochs: int, env: dict, steps: int | None = None) -> list[str]:
    return [sys.executable, "-m", "dlexp", "train", f"trainer.max_epochs={epochs}", f"data.n_train={N_TRAIN}",
            f"data.n_features={N_FEATURES}", f"data.n_classes={N_CLASSES}",
            f"model.hidden=[{HIDDEN},{HIDDEN}]", f"data.batch_size={BATCH}", "trainer.accelerator=cpu"] + \
        ([f"trainer.steps_per_call={steps}"] if steps else [])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="alternations of bare and dlexp")
    ap.add_argument("--epochs", type=int, nargs=2, default=[1, 9])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for both (OMP_NUM_THREADS); on a machine shared with other work, more "
                         "threads than free cores make both spin and the figures meaningless (default 1)")
    ap.add_argument("--steps-per-call", type=int, default=None,
                    help="dlexp's trainer.steps_per_call (default: dlexp's own choice; 1: one step per call)")
    args = ap.parse_args()
    lo, hi = args.epochs
    runs = {"bare": lambda e, env: bare(e, env), "dlexp": lambda e, env: dlexp(e, env, args.steps_per_call)}
    walls: dict[tuple[str, int], list[float]] = {(n, e): [] for n in runs for e in (lo, hi)}
    gaps: dict[str, list[float]] = {"bare": [], "dlexp": []}
    cpus: dict[tuple[str, int], list[float]] = {(n, e): [] for n in runs for e in (lo, hi)}
    cpu_gaps: dict[str, list[float]] = {"bare": [], "dlexp": []}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, DLEXP_RUNS_DIR=str(Path(tmp) / "runs"), OMP_NUM_THREADS=str(args.threads),
                   MKL_NUM_THREADS=str(args.threads))
        env.pop("DLEXP_TRACKING_URI", None)
        subprocess.run(dlexp(1, env)[:3] + ["--help"], env=env, capture_output=True)  # warm the file cache
        wall(dlexp(1, env, args.steps_per_call)[:4] + ["data.n_train=500"], env)        # and the store
        for i in range(args.repeat):
            for epochs in (lo, hi):
                order = ("bare", "dlexp") if i % 2 == 0 else ("dlexp", "bare")
                for name in order:
                    t, between, cpu, cpu_between = wall(runs[name](epochs, env), env)
                    gaps[name] += between
                    cpu_gaps[name] += cpu_between
                    walls[(name, epochs)].append(t)
                    cpus[(name, epochs)].append(cpu)
                    print(f"  [{i + 1}] {name:5s} {epochs} epoch(s): {t:6.2f} s  ({cpu:6.2f} CPU s)", flush=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    best = {k: min(v) for k, v in walls.items()}
    # per alternation: the per-epoch ratio and the fixed overhead from that alternation's four runs
    ratios = [((walls[("dlexp", hi)][i] - walls[("dlexp", lo)][i]) / (walls[("bare", hi)][i] - walls[("bare", lo)][i]))
              for i in range(args.repeat)]
    fixed = [walls[("dlexp", lo)][i] - walls[("bare", lo)][i] for i in range(args.repeat)]
    per_epoch = {n: (best[(n, hi)] - best[(n, lo)]) / (hi - lo) for n in runs}
    steady = {n: statistics.median(g) for n, g in gaps.items()}
    print(f"\nworkload: {N_TRAIN} x {N_FEATURES}, {N_CLASSES} classes, MLP [{HIDDEN},{HIDDEN}], batch {BATCH}; "
          f"{args.repeat} alternations, {os.cpu_count()} cores, {args.threads} torch thread(s), load average now {os.getloadavg()[0]:.1f}; "
          f"dlexp steps per call: {args.steps_per_call or 'default'}")
    print(f"wall, {lo} epoch (median):  bare {med[('bare', lo)]:.2f} s   dlexp {med[('dlexp', lo)]:.2f} s")
    print(f"wall, {hi} epochs (median): bare {med[('bare', hi)]:.2f} s   dlexp {med[('dlexp', hi)]:.2f} s")
    print(f"per-epoch ratio dlexp/bare, whole runs: median {statistics.median(ratios):.3f} "
          f"(alternations: {', '.join(f'{r:.3f}' for r in ratios)}); best-of {per_epoch['dlexp'] / per_epoch['bare']:.3f}"
          f"  (target <= 1.05)")
    print(f"steady-state epoch (median time between epoch lines): bare {steady['bare']:.3f} s   "
          f"dlexp {steady['dlexp']:.3f} s   ratio {steady['dlexp'] / steady['bare']:.3f}  (target <= 1.05)")
    cmed = {k: statistics.median(v) for k, v in cpus.items()}
    cpu_epoch = {n: (cmed[(n, hi)] - cmed[(n, lo)]) / (hi - lo) for n in runs}
    csteady = {n: statistics.median(g) for n, g in cpu_gaps.items()}
    print(f"CPU seconds of the command's own process (not stretched by the load; dlexp's tracking process, "
          f"which runs beside it, not counted): per epoch from whole runs bare {cpu_epoch['bare']:.3f}   "
          f"dlexp {cpu_epoch['dlexp']:.3f}   ratio {cpu_epoch['dlexp'] / cpu_epoch['bare']:.3f}; "
          f"steady-state epoch bare {csteady['bare']:.3f}   dlexp {csteady['dlexp']:.3f}   "
          f"ratio {csteady['dlexp'] / csteady['bare']:.3f}; {lo}-epoch run bare {cmed[('bare', lo)]:.2f}   "
          f"dlexp {cmed[('dlexp', lo)]:.2f}   difference {cmed[('dlexp', lo)] - cmed[('bare', lo)]:.2f}")
    print(f"fixed overhead of a {lo}-epoch run: median {statistics.median(fixed):.2f} s; best-of "
          f"{best[('dlexp', lo)] - best[('bare', lo)]:.2f} s  (target <= 4 s)")


if __name__ == "__main__":
    main()
