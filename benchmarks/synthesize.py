"""`data.synthesize` on shapes served under other conditions: docs/images-text.md's commands and their errors.

Writes the training shapes (sharp, as drawn) and the served ones (out of focus by 1.5 px and half as bright),
trains `dlexp train data=images data.path=shapes/ data.dev_path=served/ data.image_size=16 model=cnn
baseline.human_error=0.0` with `data.synthesize` at 0, 0.5 and 1, then `dlexp recipe` on the plain command with a
budget of 3 runs, and prints each run's four errors, the data-mismatch gap (dev - train-dev) and the conditions
it matched.

    python benchmarks/synthesize.py [--quick]     # --quick: 2 epochs each (a smoke check)

Runs go to a temporary store unless DLEXP_RUNS_DIR is set; the images to a temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from pretrain import dlexp, latest  # benchmarks/pretrain.py: one dlexp command in a subprocess, its stdout
from reweight import metrics

TRAIN = ["data=images", "data.path=shapes/", "data.dev_path=served/", "data.image_size=16", "model=cnn",
         "baseline.human_error=0.0"]


def line(name: str, e: dict, extra: str = "") -> str:
    return (f"{name:>14}  train {e['train']:.2%}  train_dev {e['train_dev']:.2%}  dev {e['dev']:.2%}  "
            f"test {e['test']:.2%}  mismatch gap {e['dev'] - e['train_dev']:+.2%}{extra}")


def main() -> None:
    quick = "--quick" in sys.argv
    os.environ.setdefault("DLEXP_RUNS_DIR", tempfile.mkdtemp(prefix="dlexp-synthesize-"))
    os.chdir(tempfile.mkdtemp(prefix="dlexp-shapes-"))
    for args in (["shapes/", "--per-class", "200", "--size", "16"],
                 ["served/", "--per-class", "100", "--size", "16", "--seed", "1", "--blur", "1.5", "--light", "0.5"]):
        subprocess.run([sys.executable, "-m", "dlexp.data.examples", "shapes", *args], check=True)
    epochs = ["trainer.max_epochs=2"] if quick else []
    t0 = time.perf_counter()
    for share in ("0", "0.5", "1"):
        name = f"synthesize-{share}"
        dlexp("train", *TRAIN, f"data.synthesize={share}", *epochs, f"tracking.run_name={name}")
        run = latest(name)
        m = metrics(run["run_id"])
        extra = (f"  blur {m['data/synth_blur']:g} px  noise {m['data/synth_noise']:g}  brightness "
                 f"{m['data/synth_brightness']:+.2f}  contrast x{m['data/synth_contrast']:.2f}"
                 if "data/synth_blur" in m else "")
        print(line(name, run["errors"], extra), flush=True)
    doc = json.loads(dlexp("recipe", *TRAIN, *epochs, "--budget", "3", "--json"))
    for r in doc["trail"]:
        print(f"  recipe: {r['problem']}: {r['action']}: {r['outcome']}")
    print(line("recipe final", doc["final"]["errors"], f"  ({doc['stopped_because']})"), flush=True)
    print(f"({time.perf_counter() - t0:.0f} s in all)")


if __name__ == "__main__":
    main()
