"""`data.reweight` on the mismatch preset: docs/configuration.md's commands and the errors each gives.

Trains `dlexp train experiment=mismatch data.n_train=2000 data.n_dev=1000 data.n_test=1000 data.reweight=R`
for R = 0, 0.5 and 1, then the larger network (`model.hidden=[256,256,256] trainer.max_epochs=80
optimizer.weight_decay=0.001`) at R = 0 and 0.5, and prints each run's four errors, its data-mismatch gap
(dev - train-dev) and, where it reweighted, `data/shift_auc` and `data/reweight_ess`.

    python benchmarks/reweight.py [--quick]     # --quick: 2 epochs each (a smoke check)

Runs go to a temporary store unless DLEXP_RUNS_DIR is set.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

from pretrain import dlexp  # benchmarks/pretrain.py: one dlexp command in a subprocess, its stdout

BASE = ["experiment=mismatch", "data.n_train=2000", "data.n_dev=1000", "data.n_test=1000"]
BIG = ["model.hidden=[256,256,256]", "trainer.max_epochs=80", "optimizer.weight_decay=0.001"]


def metrics(run_id: str) -> dict:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{os.environ['DLEXP_RUNS_DIR']}/mlflow.db"
    return MlflowClient(tracking_uri=uri).get_run(run_id).data.metrics


def main() -> None:
    quick = "--quick" in sys.argv
    os.environ.setdefault("DLEXP_RUNS_DIR", tempfile.mkdtemp(prefix="dlexp-reweight-"))
    plans = [([], r) for r in ("0", "0.5", "1")] + [(BIG, r) for r in ("0", "0.5")]
    t0 = time.perf_counter()
    for extra, r in plans:
        name = f"reweight-{r}" + ("-big" if extra else "")
        epochs = ["trainer.max_epochs=2"] if quick else []
        dlexp("train", *BASE, f"data.reweight={r}", *extra, *epochs, f"tracking.run_name={name}")
        run = next(x for x in json.loads(dlexp("runs", "--json", "-n", "5")) if x["run_name"] == name)
        e, m = run["errors"], metrics(run["run_id"])
        shift = (f"  shift_auc {m['data/shift_auc']:.2f}  reweight_ess {m['data/reweight_ess']:.2f}"
                 if "data/shift_auc" in m else "")
        print(f"{name:>16}  train {e['train']:.2%}  train_dev {e['train_dev']:.2%}  dev {e['dev']:.2%}  "
              f"test {e['test']:.2%}  mismatch gap {e['dev'] - e['train_dev']:+.2%}{shift}", flush=True)
    print(f"({time.perf_counter() - t0:.0f} s in all)")


if __name__ == "__main__":
    main()
