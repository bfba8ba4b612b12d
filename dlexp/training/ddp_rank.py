"""A further DDP rank of `dlexp train`: `python -m dlexp.training.ddp_rank SPEC`, started by rank 0's launcher
(`ddp.RankLauncher`). It trains through the same `fit()` and ends; rank 0 alone measures and records.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import time
from pathlib import Path


def _watch_parent(pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != pid:  # rank 0 is gone (kill -9): nothing to train for
            os._exit(1)


def rank_main(spec_path: str) -> int:
    with open(spec_path, "rb") as f:
        spec = pickle.load(f)
    threading.Thread(target=_watch_parent, args=(spec["parent"],), daemon=True).start()
    from omegaconf import OmegaConf

    from dlexp.training import fit

    cfg = OmegaConf.create(spec["config"])
    try:
        splits = spec["splits"]
        if splits is None:  # the user's own Datasets: built here from the job's config, as rank 0 did
            from dlexp.data import load

            splits = load(cfg.data, seed=cfg.seed)
        fit.fit(cfg, splits, workdir=Path(spec["workdir"]),
                resume_from=Path(spec["resume_from"]) if spec["resume_from"] else None)
    except SystemExit as exc:  # Lightning's SIGTERMException: rank 0 asked every rank to stop
        return 0 if type(exc).__name__ == "SIGTERMException" else 1
    except BaseException as exc:
        if os.environ.get("DLEXP_DEBUG"):
            import traceback

            traceback.print_exc()
        text = str(exc).strip().splitlines()
        print(f"{type(exc).__name__}: {text[0] if text else ''}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(rank_main(sys.argv[1]))
