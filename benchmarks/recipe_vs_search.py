"""`dlexp recipe` against blind search on the same budget of training runs: random search and Optuna's TPE
sampler over the knobs a user would write down (model logistic or mlp, widths 64-256 with 2 or 3 layers,
5-40 epochs, learning rate 1e-3-1e-2, dropout 0-0.3).

Problems, each induced on the synthetic source: bias (`experiment=underfit`: a linear model on a non-linear
task), variance (`experiment=overfit`'s settings: a wide network on 500 noisy examples, 100 epochs), mismatch
(`experiment=mismatch`: dev/test shifted away from training), noisy (`data.label_noise=0.3`: 30% of the labels
wrong, with the default network). Every method starts from a fresh process and a fresh MLflow store, and trains
through dlexp itself: the recipe as `dlexp recipe --json`, the searches through `dlexp.training.launch.run_jobs`
(one `dlexp train` job per trial, in one process, as a user's Optuna objective would call it). The recipe
runs with `--same-data` (the searches cannot add training rows; `--recipe-more-data` lets it). A search of
budget 16 draws the same first 8 trials as one of budget 8 (random: the same seed; TPE: 4 random start-up
trials, then TPE), so one search of the largest budget gives every smaller budget as its prefix; the recipe
runs once per budget.

Prints, per problem and budget, each method's median (over seeds) final dev error (the best dev error of its
runs: the model it picked), the test error of that model, the wall time and the dev error per seed, then on how
many problems the recipe is no worse than each search; `--out FILE` keeps every figure, and `--table FILE...`
prints the table of runs made apart (their --out files or logs) without training anything.

    python benchmarks/recipe_vs_search.py --problems bias --seeds 0 --budgets 8
    python benchmarks/recipe_vs_search.py [--problems bias variance mismatch noisy] [--seeds 0 1 2]
        [--budgets 8 16] [--methods recipe random tpe] [--n-train 2000] [--n-dev 1000] [--n-test 1000] [--jobs 1]
    python benchmarks/recipe_vs_search.py --table recipe.json searches.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROBLEMS = {
    "bias": ["experiment=underfit"],
    # experiment=overfit, spelled out: a search's model=logistic drops the model keys (the preset's would not go)
    "variance": ["data.n_train=500", "data.label_noise=0.1", "model.hidden=[512,512]", "trainer.max_epochs=100"],
    "mismatch": ["experiment=mismatch"],
    "noisy": ["data.label_noise=0.3"],
}
KEEP_TRAIN = {"variance"}  # the preset's few training examples are its point: --n-train leaves them alone
TPE_STARTUP = 4


def space_random(rng: random.Random) -> dict:
    return {"model": rng.choice(["logistic", "mlp"]), "width": rng.randint(64, 256), "layers": rng.randint(2, 3),
            "epochs": rng.randint(5, 40), "lr": 10 ** rng.uniform(-3, -2), "dropout": rng.uniform(0.0, 0.3)}


def space_optuna(trial) -> dict:
    return {"model": trial.suggest_categorical("model", ["logistic", "mlp"]),
            "width": trial.suggest_int("width", 64, 256), "layers": trial.suggest_int("layers", 2, 3),
            "epochs": trial.suggest_int("epochs", 5, 40), "lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.3)}


def overrides_of(p: dict) -> list[str]:
    out = [f"model={p['model']}", f"trainer.max_epochs={p['epochs']}", f"optimizer.lr={p['lr']:.3g}"]
    if p["model"] == "mlp":
        out += [f"model.hidden=[{','.join([str(p['width'])] * p['layers'])}]", f"model.dropout={p['dropout']:.2f}"]
    return out


def worker(method: str, base: list[str], budget: int, seed: int) -> None:
    """One search in this process: prints one JSON line per trial (dev, test, seconds since the start)."""
    t0 = time.perf_counter()
    from dlexp.training.launch import run_jobs

    def train(params: dict) -> tuple[float, float]:
        own = [o for o in base if not o.startswith("model.")]  # the trial sets the model and its keys
        r = run_jobs([], jobs=[own + overrides_of(params)], quiet=True)[0]
        if not r.ok:
            return float("nan"), float("nan")
        e = r.report.diagnosis.errors
        return e.dev, e.test

    def emit(dev, test, params):
        print(json.dumps({"dev": dev, "test": test, "t": time.perf_counter() - t0, "params": params}), flush=True)

    if method == "random":
        rng = random.Random(seed)
        for _ in range(budget):
            p = space_random(rng)
            emit(*train(p), p)
        return
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP))
    for _ in range(budget):
        trial = study.ask()
        p = space_optuna(trial)
        dev, test = train(p)
        study.tell(trial, dev if dev == dev else 1.0)
        emit(dev, test, p)


def run_search(method: str, base: list[str], budget: int, seed: int, env: dict) -> list[dict]:
    proc = subprocess.run([sys.executable, __file__, "--worker", method, "--budget", str(budget), "--seed", str(seed),
                           "--", *base], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{method} failed:\n{proc.stderr[-3000:]}")
    return [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]


def run_recipe(base: list[str], budget: int, env: dict, *, more_data: bool = False) -> dict:
    t = time.perf_counter()
    own = [] if more_data else ["--same-data"]  # the searches cannot add training rows: neither does the recipe
    proc = subprocess.run([sys.executable, "-m", "dlexp", "recipe", *base, "--budget", str(budget), "--json", *own],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"recipe failed: {' '.join(base)}\n{proc.stderr[-3000:]}")
    doc = json.loads(proc.stdout)
    accepted = [r["action"] for r in doc["trail"] if r["accepted"]]
    tried = [f"{r['problem']}: {r['action']}: {r['outcome']}" for r in doc["trail"]]  # every candidate, in order
    return {"dev": doc["final"]["errors"]["dev"], "test": doc["final"]["errors"]["test"],
            "t": time.perf_counter() - t, "stopped": doc["stopped_because"], "used": doc["budget"]["used"],
            "accepted": accepted, "tried": tried}


def best_of(trials: list[dict], budget: int) -> dict:
    done = [t for t in trials[:budget] if t["dev"] == t["dev"]]
    pick = min(done, key=lambda t: t["dev"])
    return {"dev": pick["dev"], "test": pick["test"], "t": trials[budget - 1]["t"], "params": pick["params"]}


def env_for(folder: Path) -> dict:
    env = dict(os.environ, DLEXP_RUNS_DIR=str(folder / "runs"))
    env.pop("DLEXP_TRACKING_URI", None)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--budgets", nargs="+", type=int, default=[8, 16])
    ap.add_argument("--methods", nargs="+", default=["recipe", "random", "tpe"], choices=["recipe", "random", "tpe"])
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-dev", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=1,
                    help="methods x seeds run at once, each in its own process (wall times then share the cores)")
    ap.add_argument("--out", type=Path, help="write every figure to this JSON file")
    ap.add_argument("--recipe-more-data", action="store_true",
                    help="let the recipe add training rows (by default it runs with --same-data, as the searches)")
    ap.add_argument("--table", nargs="+", type=Path, metavar="FILE",
                    help="run nothing: print the table of saved results (--out files or logs of earlier runs)")
    ap.add_argument("--worker", choices=["random", "tpe"], help=argparse.SUPPRESS)
    ap.add_argument("--budget", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    ap.add_argument("base", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.base, args.budget, args.seed)
        return
    if args.table:
        table([r for path in args.table for r in read_results(path)])
        return
    print(f"cores: {os.cpu_count()}; problems {args.problems}, seeds {args.seeds}, budgets {args.budgets}", flush=True)
    results: list[dict] = []
    lock = threading.Lock()

    def one(tmp: str, problem: str, seed: int, method: str) -> None:
        sizes = [f"data.n_dev={args.n_dev}", f"data.n_test={args.n_test}"]
        if problem not in KEEP_TRAIN:
            sizes.insert(0, f"data.n_train={args.n_train}")
        base = PROBLEMS[problem] + sizes + [f"seed={seed}"]
        folder = Path(tmp) / f"{problem}-{seed}-{method}"
        if method == "recipe":
            rows = [dict(run_recipe(base, b, env_for(folder / str(b)), more_data=args.recipe_more_data),
                         problem=problem, seed=seed, method=method, budget=b) for b in args.budgets]
        else:
            trials = run_search(method, base, max(args.budgets), seed, env_for(folder))
            rows = [dict(best_of(trials, b), problem=problem, seed=seed, method=method, budget=b) for b in args.budgets]
        with lock:
            for row in rows:
                results.append(row)
                print(json.dumps(row), flush=True)

    tasks = [(p, s, m) for p in args.problems for s in args.seeds for m in args.methods]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for f in [pool.submit(one, tmp, *t) for t in tasks]:
            f.result()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    table(results)


def read_results(path: Path) -> list[dict]:
    """The rows of a saved run: the JSON list `--out` writes, or the log of one (the JSON lines it prints)."""
    text = path.read_text()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]


def table(results: list[dict]) -> None:
    """Per problem and budget, each method's median dev error (the model it picked), that model's test error,
    the wall time and the per-seed dev errors; then, per budget, on how many problems the recipe's median dev
    error is no worse than each search's (on the seeds both have)."""
    results = list({(r["problem"], r["budget"], r["method"], r["seed"]): r for r in results}.values())  # once each
    problems = list(dict.fromkeys(r["problem"] for r in results))
    budgets = sorted({r["budget"] for r in results})
    methods = [m for m in ("recipe", "random", "tpe") if any(r["method"] == m for r in results)]
    print(f"\n{'problem':<10}{'budget':>7}  {'method':<8}{'dev (median)':>14}{'test of pick':>14}{'wall s':>9}  "
          "dev per seed")
    medians = {}
    for problem in problems:
        for b in budgets:
            for method in methods:
                rows = sorted((r for r in results if (r["problem"], r["budget"], r["method"]) == (problem, b, method)),
                              key=lambda r: r["seed"])
                if not rows:
                    continue
                med = {k: statistics.median(r[k] for r in rows) for k in ("dev", "test", "t")}
                medians[problem, b, method] = {r["seed"]: r for r in rows}
                seeds = "  ".join(f"{r['seed']}: {r['dev']:.2%}" for r in rows)
                print(f"{problem:<10}{b:>7}  {method:<8}{med['dev']:>14.2%}{med['test']:>14.2%}{med['t']:>9.0f}  {seeds}")
    for b in budgets:
        for other in [m for m in methods if m != "recipe"]:
            for what in ("dev", "test"):
                wins = []
                for problem in problems:
                    mine, theirs = medians.get((problem, b, "recipe")), medians.get((problem, b, other))
                    both = sorted(set(mine or {}) & set(theirs or {}))
                    if both:
                        wins.append(statistics.median(mine[s][what] for s in both)
                                    <= statistics.median(theirs[s][what] for s in both))
                if wins:
                    print(f"budget {b}: the recipe's median {what} error (of the model it picked) is no worse than "
                          f"{other}'s on {sum(wins)} of {len(wins)} problems (seeds both have)")

if __name__ == "__main__":
    main()
