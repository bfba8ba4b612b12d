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
        [--accelerator cpu|gpu|auto] [--workload mlp|cnn] [--n-train N] [--image-size S] [--json FIGURES.json]

--workload cnn holds `dlexp train data=npz model=cnn` (CNN [64,128], 24,000 images 3 x 64 x 64 by default,
written to a temporary .npz) against the same CNN in the bare loop; --accelerator gpu runs both on the GPU.
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

N_TRAIN, N_FEATURES, N_CLASSES, HIDDEN, BATCH = 60_000, 64, 10, 256, 256
CHANNELS = (64, 128)  # --workload cnn: dlexp's CNN on N_IMAGES random-textured 3 x SIZE x SIZE images
N_IMAGES, SIZE = 24_000, 64
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


def images(path: Path, n: int, size: int, classes: int = N_CLASSES) -> Path:
    """n images (3 x size x size, uint8) in an .npz: a class-dependent pattern under noise, so there is
    something to learn; both sides read it with dlexp's npz reader."""
    import numpy as np

    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, n)
    patterns = rng.integers(0, 256, (classes, 3, size, size)).astype(np.int16)
    x = (patterns[y] // 2 + rng.integers(0, 128, (n, 3, size, size), dtype=np.int16)).astype(np.uint8)
    np.savez(path, X=x, y=y)
    return path


class Workload:
    """What both sides train: the MLP on the synthetic source, or dlexp's CNN on an .npz of images."""

    def __init__(self, kind: str, n_train: int | None, size: int, accelerator: str, steps: int | None):
        self.kind, self.size, self.accelerator, self.steps = kind, size, accelerator, steps
        self.n = n_train or (N_TRAIN if kind == "mlp" else N_IMAGES)
        self.npz: Path | None = None

    def prepare(self, folder: Path) -> None:
        if self.kind == "cnn":
            self.npz = images(folder / "images.npz", self.n, self.size)

    def describe(self) -> str:
        if self.kind == "cnn":
            return (f"CNN {list(CHANNELS)} on {self.n} images 3 x {self.size} x {self.size} (70% train), "
                    f"{N_CLASSES} classes, batch {BATCH}")
        return f"{self.n} x {N_FEATURES}, {N_CLASSES} classes, MLP [{HIDDEN},{HIDDEN}], batch {BATCH}"

    def bare(self, epochs: int) -> list[str]:
        device = {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda"}.get(self.accelerator, "auto")
        cmd = [sys.executable, str(HERE / "bare_loop.py"), str(epochs), str(self.n), str(N_FEATURES),
               str(N_CLASSES), str(HIDDEN), str(BATCH), "--device", device]
        return cmd + (["--npz", str(self.npz), "--channels", *map(str, CHANNELS)] if self.npz else [])

    def dlexp(self, epochs: int, n_train: int | None = None) -> list[str]:
        cmd = [sys.executable, "-m", "dlexp", "train", f"trainer.max_epochs={epochs}",
               f"data.batch_size={BATCH}", f"trainer.accelerator={self.accelerator}"]
        if self.npz:
            cmd += ["data=npz", f"data.path={self.npz}", "model=cnn", f"model.channels=[{','.join(map(str, CHANNELS))}]",
                    "baseline.human_error=none"] + ([f"data.n_train={n_train}"] if n_train else [])
        else:
            cmd += [f"data.n_train={n_train or self.n}", f"data.n_features={N_FEATURES}",
                    f"data.n_classes={N_CLASSES}", f"model.hidden=[{HIDDEN},{HIDDEN}]"]
        return cmd + ([f"trainer.steps_per_call={self.steps}"] if self.steps else [])


def figures(walls: dict, gaps: dict, cpus: dict, cpu_gaps: dict, lo: int, hi: int) -> dict:
    """The benchmark's figures from the alternations done so far (medians over them, and best-of)."""
    done = min(len(v) for v in walls.values())
    med = {k: statistics.median(v[:done]) for k, v in walls.items()}
    best = {k: min(v[:done]) for k, v in walls.items()}
    ratios = [(walls[("dlexp", hi)][i] - walls[("dlexp", lo)][i]) / (walls[("bare", hi)][i] - walls[("bare", lo)][i])
              for i in range(done)]
    fixed = [walls[("dlexp", lo)][i] - walls[("bare", lo)][i] for i in range(done)]
    per_epoch = {n: (best[(n, hi)] - best[(n, lo)]) / (hi - lo) for n in ("bare", "dlexp")}
    steady = {n: statistics.median(g) if g else float("nan") for n, g in gaps.items()}
    cmed = {k: statistics.median(v[:done]) for k, v in cpus.items()}
    cpu_epoch = {n: (cmed[(n, hi)] - cmed[(n, lo)]) / (hi - lo) for n in ("bare", "dlexp")}
    csteady = {n: statistics.median(g) if g else float("nan") for n, g in cpu_gaps.items()}
    return {
        "alternations": done, "epochs": [lo, hi],
        "wall_lo": {n: med[(n, lo)] for n in ("bare", "dlexp")}, "wall_hi": {n: med[(n, hi)] for n in ("bare", "dlexp")},
        "per_epoch_ratio": statistics.median(ratios), "per_epoch_ratios": ratios,
        "per_epoch_ratio_best_of": per_epoch["dlexp"] / per_epoch["bare"],
        "per_epoch_s": {n: (med[(n, hi)] - med[(n, lo)]) / (hi - lo) for n in ("bare", "dlexp")},
        "steady_epoch_s": steady, "steady_ratio": steady["dlexp"] / steady["bare"],
        "cpu_per_epoch_s": cpu_epoch, "cpu_per_epoch_ratio": cpu_epoch["dlexp"] / cpu_epoch["bare"],
        "cpu_steady_ratio": csteady["dlexp"] / csteady["bare"],
        "cpu_lo": {n: cmed[(n, lo)] for n in ("bare", "dlexp")},
        "fixed_overhead_s": statistics.median(fixed), "fixed_overhead_best_of_s": best[("dlexp", lo)] - best[("bare", lo)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="alternations of bare and dlexp")
    ap.add_argument("--epochs", type=int, nargs=2, default=[1, 9])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for both (OMP_NUM_THREADS); on a machine shared with other work, more "
                         "threads than free cores make both spin and the figures meaningless (default 1)")
    ap.add_argument("--steps-per-call", type=int, default=None,
                    help="dlexp's trainer.steps_per_call (default: dlexp's own choice; 1: one step per call)")
    ap.add_argument("--accelerator", default="cpu",
                    help="dlexp's trainer.accelerator; the bare loop uses the same device (cpu | gpu | auto; default cpu)")
    ap.add_argument("--workload", choices=["mlp", "cnn"], default="mlp",
                    help=f"mlp: the MLP on the synthetic source; cnn: dlexp's CNN {list(CHANNELS)} on an .npz of "
                         f"images (data=npz model=cnn)")
    ap.add_argument("--n-train", type=int, default=None,
                    help=f"rows (mlp, default {N_TRAIN}) or images in the .npz (cnn, default {N_IMAGES})")
    ap.add_argument("--image-size", type=int, default=SIZE, help=f"cnn: images are 3 x S x S (default {SIZE})")
    ap.add_argument("--no-warmup", action="store_true", help="skip the first, untimed runs that warm caches")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here (after each alternation)")
    args = ap.parse_args()
    lo, hi = args.epochs
    work = Workload(args.workload, args.n_train, args.image_size, args.accelerator, args.steps_per_call)
    runs = {"bare": work.bare, "dlexp": work.dlexp}
    walls: dict[tuple[str, int], list[float]] = {(n, e): [] for n in runs for e in (lo, hi)}
    gaps: dict[str, list[float]] = {"bare": [], "dlexp": []}
    cpus: dict[tuple[str, int], list[float]] = {(n, e): [] for n in runs for e in (lo, hi)}
    cpu_gaps: dict[str, list[float]] = {"bare": [], "dlexp": []}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, DLEXP_RUNS_DIR=str(Path(tmp) / "runs"), OMP_NUM_THREADS=str(args.threads),
                   MKL_NUM_THREADS=str(args.threads))
        env.pop("DLEXP_TRACKING_URI", None)
        work.prepare(Path(tmp))
        if not args.no_warmup:
            subprocess.run(work.dlexp(1)[:4] + ["--help"], env=env, capture_output=True)  # warm the file cache
            wall(work.dlexp(1, n_train=500), env)                                        # and the store
        for i in range(args.repeat):
            for epochs in (lo, hi):
                order = ("bare", "dlexp") if i % 2 == 0 else ("dlexp", "bare")
                for name in order:
                    t, between, cpu, cpu_between = wall(runs[name](epochs), env)
                    gaps[name] += between
                    cpu_gaps[name] += cpu_between
                    walls[(name, epochs)].append(t)
                    cpus[(name, epochs)].append(cpu)
                    print(f"  [{i + 1}] {name:5s} {epochs} epoch(s): {t:6.2f} s  ({cpu:6.2f} CPU s)", flush=True)
            if args.json:
                args.json.write_text(json.dumps(dict(figures(walls, gaps, cpus, cpu_gaps, lo, hi),
                                                     workload=work.describe(), accelerator=args.accelerator)))
    f = figures(walls, gaps, cpus, cpu_gaps, lo, hi)
    print(f"\nworkload: {work.describe()}; accelerator {args.accelerator}; "
          f"{args.repeat} alternations, {os.cpu_count()} cores, {args.threads} torch thread(s), load average now {os.getloadavg()[0]:.1f}; "
          f"dlexp steps per call: {args.steps_per_call or 'default'}")
    print(f"wall, {lo} epoch (median):  bare {f['wall_lo']['bare']:.2f} s   dlexp {f['wall_lo']['dlexp']:.2f} s")
    print(f"wall, {hi} epochs (median): bare {f['wall_hi']['bare']:.2f} s   dlexp {f['wall_hi']['dlexp']:.2f} s")
    print(f"per-epoch ratio dlexp/bare, whole runs: median {f['per_epoch_ratio']:.3f} "
          f"(alternations: {', '.join(f'{r:.3f}' for r in f['per_epoch_ratios'])}); best-of {f['per_epoch_ratio_best_of']:.3f}"
          f"  (target <= 1.05)")
    print(f"steady-state epoch (median time between epoch lines): bare {f['steady_epoch_s']['bare']:.3f} s   "
          f"dlexp {f['steady_epoch_s']['dlexp']:.3f} s   ratio {f['steady_ratio']:.3f}  (target <= 1.05)")
    print(f"CPU seconds of the command's own process (not stretched by the load; dlexp's tracking process, "
          f"which runs beside it, not counted): per epoch from whole runs bare {f['cpu_per_epoch_s']['bare']:.3f}   "
          f"dlexp {f['cpu_per_epoch_s']['dlexp']:.3f}   ratio {f['cpu_per_epoch_ratio']:.3f}; "
          f"steady-state ratio {f['cpu_steady_ratio']:.3f}; {lo}-epoch run bare {f['cpu_lo']['bare']:.2f}   "
          f"dlexp {f['cpu_lo']['dlexp']:.2f}   difference {f['cpu_lo']['dlexp'] - f['cpu_lo']['bare']:.2f}")
    print(f"fixed overhead of a {lo}-epoch run: median {f['fixed_overhead_s']:.2f} s; best-of "
          f"{f['fixed_overhead_best_of_s']:.2f} s  (target <= 4 s)")


if __name__ == "__main__":
    main()
