"""How long the regression bootstrap takes: `bootstrap.intervals` over four splits of N per-example errors.

    python benchmarks/bootstrap.py [--n 10000] [--repeat 5]

Prints the best and median wall time of one call (1,000 replicates per split, the default). It runs once
per regression run, after training; a few hundred milliseconds at 10,000 examples per split is the aim.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from dlexp.diagnosis import bootstrap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="examples per split")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    errors = {s: np.abs(rng.normal(0, 1, args.n)) for s in ("train", "train_dev", "dev", "test")}
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        bootstrap.intervals(errors, "rmse", 0.5)
        times.append(time.perf_counter() - t)
    print(f"bootstrap.intervals, 4 splits x {args.n} examples: best {min(times):.3f} s, "
          f"median {statistics.median(times):.3f} s over {args.repeat}")


if __name__ == "__main__":
    main()
