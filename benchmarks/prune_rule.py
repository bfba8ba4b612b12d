"""Choose the recipe's early-stop rule on recorded candidates: how many would it stop, how many epochs it saves.

Reads every recipe candidate in the given MLflow stores (a run tagged `dlexp.follows`, the incumbent it was
compared with), its dev error per epoch and its incumbent's, and replays them through the rule of
`dlexp.training.prune` (Optuna's MedianPruner against the incumbent's curve raised by a margin of k standard
errors, compared from a share of the longer run's epochs on) for a grid of shares and k. A candidate counts as
accepted when it became an incumbent (another candidate follows it, or it is the recipe's final run), as improved
when its trail row says it lowered the dev error significantly. A safe rule stops no accepted candidate.

    python benchmarks/prune_rule.py STORE.db [STORE.db ...] [--n-dev 1000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlflow.tracking import MlflowClient

from dlexp.training.prune import from_epoch_of, margin_of, would_stop


def candidates(uri: str) -> list[dict]:
    c = MlflowClient(uri)
    runs = [r for e in c.search_experiments() for r in c.search_runs([e.experiment_id], max_results=5000)]
    follows = {r.data.tags.get("dlexp.follows") for r in runs}
    final = {r.data.tags.get("dlexp.recipe.final") for r in runs}
    improved = set()
    for r in runs:
        if r.data.tags.get("dlexp.kind") == "recipe":
            from dlexp.tracking.trail import read_trail

            for row in (read_trail(uri, r.info.run_id) or {}).get("trail", []):
                if row.get("improved"):
                    improved.add(row["run_id"])

    def curve(run_id: str) -> list[float]:
        hist = c.get_metric_history(run_id, "epoch/dev_error")
        return [m.value for m in sorted(hist, key=lambda m: (m.step, m.timestamp))]

    out = []
    for r in runs:
        inc = r.data.tags.get("dlexp.follows")
        if not inc or r.info.status != "FINISHED":
            continue
        out.append({"run_id": r.info.run_id, "action": r.data.tags.get("dlexp.action", ""), "curve": curve(r.info.run_id),
                    "against": curve(inc), "accepted": r.info.run_id in follows or r.info.run_id in final,
                    "improved": r.info.run_id in improved, "store": uri})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stores", nargs="+", type=Path)
    ap.add_argument("--n-dev", type=int, default=1000)
    ap.add_argument("--shares", nargs="+", type=float, default=[0.25, 0.5, 0.75])
    ap.add_argument("--ks", nargs="+", type=float, default=[0.0, 1.0, 2.0, 3.0])
    args = ap.parse_args()
    rows = [row for s in args.stores for row in candidates(f"sqlite:///{s.resolve()}")]
    rows = [r for r in rows if r["curve"] and r["against"]]
    total = sum(len(r["curve"]) for r in rows)
    print(f"{len(rows)} candidates ({sum(r['accepted'] for r in rows)} accepted, "
          f"{sum(r['improved'] for r in rows)} lowered dev significantly), {total} epochs trained")
    print(f"{'share':>6}{'k':>5}{'stopped':>9}{'accepted stopped':>18}{'improved stopped':>18}{'epochs saved':>14}")
    for share in args.shares:
        for k in args.ks:
            stopped = acc = imp = saved = 0
            for r in rows:
                longer = max(len(r["against"]), len(r["curve"]))
                at = would_stop(r["curve"], r["against"], from_epoch=from_epoch_of(longer, share),
                                margin=margin_of(r["against"][-1], args.n_dev, k))
                if at is None or at >= len(r["curve"]):
                    continue
                stopped += 1
                acc += r["accepted"]
                imp += r["improved"]
                saved += len(r["curve"]) - at
            print(f"{share:>6.2f}{k:>5.1f}{stopped:>9}{acc:>18}{imp:>18}{saved:>8} ({saved / max(total, 1):.0%})")


if __name__ == "__main__":
    main()
