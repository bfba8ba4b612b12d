"""Bigger than memory: `dlexp train data=custom` on 20 million rows x 64 floats made on demand (5.1 GB if held).

The user's Dataset (written into a temporary folder, the working directory of the run) makes each row from its
index: nothing is held. dlexp trains a few hundred steps (`trainer.limit_train_batches`) and diagnoses the
run with each split scored on a seeded sample (`diagnosis.max_eval_examples`). Prints the peak resident
memory of the whole process tree (dlexp and its tracking process, children included, sampled with psutil)
and the wall time. Target: the tree stays well under 2.5 GB.

    python benchmarks/big_data.py [--rows 20000000] [--steps 300] [--eval 20000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psutil

DATA = textwrap.dedent('''
    import numpy as np
    import torch
    from torch.utils.data import Dataset

    FEATURES = 64


    class OnDemand(Dataset):
        """n rows of 64 floats, each made from its index (and the split's seed) when asked for; 4 classes."""

        def __init__(self, n, seed):
            self.n, self.seed = n, seed

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            x = np.random.default_rng((self.seed, i)).standard_normal(FEATURES, dtype=np.float32)
            y = int(x[0] > 0) + 2 * int(x[1] > 0)  # 4 classes, read from two of the features
            return torch.from_numpy(x), y


    def make_data(rows: int = 20_000_000, held_out: int = 2_000_000):
        return {"train": OnDemand(rows, 1), "dev": OnDemand(held_out, 2), "test": OnDemand(held_out, 3)}
''')


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of `proc` and all its descendants."""
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # the command is ending
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--eval", type=int, default=20_000, help="diagnosis.max_eval_examples")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "big_data_source.py").write_text(DATA)
        env = dict(os.environ, DLEXP_RUNS_DIR=str(Path(tmp) / "runs"))
        cmd = [sys.executable, "-m", "dlexp", "train", "data=custom", "data._target_=big_data_source.make_data",
               f"data.rows={args.rows}", "data.batch_size=256", "model.hidden=[128,128]", "trainer.max_epochs=1",
               f"trainer.limit_train_batches={args.steps}", f"diagnosis.max_eval_examples={args.eval}",
               "trainer.accelerator=cpu", "trainer.enable_progress_bar=false"]
        print("$ " + " ".join(cmd[1:]).replace(f"{sys.executable} ", ""), flush=True)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        watched, peak = psutil.Process(proc.pid), [0]

        def watch():
            while proc.poll() is None:
                peak[0] = max(peak[0], tree_rss(watched))
                time.sleep(0.1)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        out = proc.stdout.read()
        proc.wait()
        elapsed = time.perf_counter() - start
        thread.join()
    keep = [ln for ln in out.splitlines() if ln.startswith(("dlexp:", "epoch", "  error/", "  gap/", "verdict"))]
    print("\n".join(keep))
    if proc.returncode != 0:
        sys.exit(f"dlexp train failed ({proc.returncode}):\n{out[-3000:]}")
    held = args.rows * 64 * 4 / 1e9
    print(f"\n{args.rows:,} training rows x 64 floats ({held:.1f} GB if held), {args.steps} steps, "
          f"each split scored on at most {args.eval:,} examples")
    print(f"peak resident memory of the process tree: {peak[0] / 2**30:.2f} GiB (target: well under 2.5 GB)")
    print(f"wall time: {elapsed:.1f} s")


if __name__ == "__main__":
    main()
