"""Pre-train on plenty, fine-tune on little: the README's transfer commands, end to end, and the variance
gaps they give.

Writes the example reviews (python -m dlexp.data.examples reviews): a small labelled set with an unlabelled
corpus, and a larger labelled set of the same topics (another seed). Pre-trains a GRU language model on the
corpus and a GRU classifier on the larger set, then trains the same GRU on 200 labelled reviews from
scratch, started from the language model, and started from the classifier. Prints each run's errors and
variance gap, and the ratio of each started run's variance gap to the one from scratch (below 1: helped).

    python benchmarks/pretrain.py [--quick]     # --quick: the same commands, a few epochs (a smoke check)

Runs go to a temporary store unless DLEXP_RUNS_DIR is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def dlexp(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "dlexp", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"dlexp {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def latest(name: str) -> dict:
    runs = json.loads(dlexp("runs", "--json", "-n", "20"))
    return next(r for r in runs if r["run_name"] == name)


def main() -> None:
    quick = "--quick" in sys.argv
    os.environ.setdefault("DLEXP_RUNS_DIR", tempfile.mkdtemp(prefix="dlexp-pretrain-"))
    data = Path(os.environ["DLEXP_RUNS_DIR"]) / "reviews"
    subprocess.run([sys.executable, "-m", "dlexp.data.examples", "reviews", str(data), "--labelled", "2000",
                    "--unlabelled", "600" if quick else "6000"], check=True)
    big = Path(os.environ["DLEXP_RUNS_DIR"]) / "big"
    subprocess.run([sys.executable, "-m", "dlexp.data.examples", "reviews", str(big), "--labelled",
                    "400" if quick else "4000", "--unlabelled", "10", "--seed", "1"], check=True)
    lm_epochs, big_epochs, epochs = ("1", "1", "2") if quick else ("13", "8", "30")
    t0 = time.perf_counter()
    dlexp("train", "data=text", f"data.path={data}/corpus.txt", "data.task=lm", "data.max_length=40",
          "data.batch_size=32", "model=gru", f"trainer.max_epochs={lm_epochs}", "tracking.run_name=lm")
    lm = latest("lm")
    dlexp("train", "data=text", f"data.path={big}/reviews.csv", "data.max_length=40", "model=gru",
          f"trainer.max_epochs={big_epochs}", "baseline.human_error=0.05", "tracking.run_name=big")
    big_run = latest("big")
    common = ["data=text", f"data.path={data}/reviews.csv", "data.n_train=200", "data.max_length=40",
              "data.batch_size=32", "model=gru", f"trainer.max_epochs={epochs}", "baseline.human_error=0.05"]
    dlexp("train", *common, "tracking.run_name=scratch")
    dlexp("train", *common, f"model.init_from={lm['run_id']}", "tracking.run_name=pretrained")
    dlexp("train", *common, f"model.init_from={big_run['run_id']}", "tracking.run_name=from_big")
    rows = {name: latest(name) for name in ("lm", "big", "scratch", "pretrained", "from_big")}
    for name, r in rows.items():
        e = r["errors"]
        print(f"{name:>10}  train {e['train']:.2%}  train_dev {e['train_dev']:.2%}  dev {e['dev']:.2%}  "
              f"variance gap {e['train_dev'] - e['train']:+.2%}  verdict {r['verdict']}")
    gap = {n: rows[n]["errors"]["train_dev"] - rows[n]["errors"]["train"] for n in ("scratch", "pretrained", "from_big")}
    for n in ("pretrained", "from_big"):
        ratio = gap[n] / gap["scratch"] if gap["scratch"] else float("nan")
        print(f"variance gap, {n} / scratch: {ratio:.2f}")
    print(f"({time.perf_counter() - t0:.0f} s in all)")


if __name__ == "__main__":
    main()
