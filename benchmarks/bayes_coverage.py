"""How often the estimated Bayes-error bracket of `baseline.human_error=auto` contains the truth.

Each setting draws training and train-dev splits from a distribution whose Bayes error is known (in closed
form, or by Monte Carlo over 400,000 draws of the true posterior), and counts how often lower <= truth <= upper
for two brackets: gradient boosting's alone (dlexp.training.baseline.bracket, what a run knows before training) and
the one a run reports, combined with the network (dlexp.diagnosis.bayes.combine). The network is dlexp's default
for a table (model, optimizer, epochs, batch size from `dlexp train data=table`'s config, built by
dlexp.models.build), trained on the training split by a plain torch loop. Target: >= 90% in every setting.

    python benchmarks/bayes_coverage.py                  # 20 repetitions per setting, about 5 min on 2 cores
    python benchmarks/bayes_coverage.py --reps 5         # a quick look
    python benchmarks/bayes_coverage.py --settings 8,9   # the data=synthetic settings only
    python benchmarks/bayes_coverage.py --epochs 2       # a network trained 2 epochs instead of 20
"""

from __future__ import annotations

import argparse
import sys
import time


import numpy as np
from scipy.stats import norm
from sklearn.datasets import make_friedman1

from dlexp.data import Split
from dlexp.diagnosis.bayes import combine, network_bracket
from dlexp.training.baseline import bracket, errors


def default_network_config():
    """What `dlexp train data=table ...` trains by default: its model, optimizer, epochs and batch size."""
    from hydra import compose, initialize_config_module

    from dlexp import config as configs

    configs.register()
    with initialize_config_module("dlexp.configs", version_base="1.3"):
        return compose("config", overrides=["data=table", "data.path=unused.csv", "data.target=y"])


def network(cfg, x_train, y_train, x_train_dev, y_train_dev, *, task: str, metric: str, seed: int) -> dict:
    """dlexp's default network for a table (dlexp.models.build), trained on the training split alone by a plain
    torch loop with the same model, optimizer, epochs and batch size as `dlexp train data=table`, inputs
    standardized on the training split (as data=table does); what dlexp's fit hands the estimate back."""
    import torch

    from dlexp import models

    torch.manual_seed(seed)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-12
    xt = torch.tensor((x_train - mean) / std, dtype=torch.float32)
    xd = torch.tensor((x_train_dev - mean) / std, dtype=torch.float32)
    regression = task == "regression"
    k = 1 if regression else int(max(y_train.max(), y_train_dev.max())) + 1
    y_mean, y_std = (float(y_train.mean()), float(y_train.std())) if regression else (0.0, 1.0)
    yt = torch.tensor((y_train - y_mean) / y_std, dtype=torch.float32) if regression else torch.tensor(y_train)
    net = models.build(cfg.model, n_features=x_train.shape[1], n_classes=k, task=task)
    o = cfg.optimizer
    opt = torch.optim.Adam(net.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    loss_fn = torch.nn.functional.mse_loss if regression else torch.nn.functional.cross_entropy
    batch, g = int(cfg.data.batch_size), torch.Generator().manual_seed(seed)
    for _ in range(int(cfg.trainer.max_epochs)):
        order = torch.randperm(len(yt), generator=g)
        for i in range(0, len(yt), batch):
            rows = order[i:i + batch]
            out = net(xt[rows])
            loss = loss_fn(out.squeeze(-1) if regression else out, yt[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.inference_mode():
        if regression:
            train_abs = np.abs(net(xt).squeeze(-1).double().numpy() * y_std + y_mean - y_train)
            dev_abs = np.abs(net(xd).squeeze(-1).double().numpy() * y_std + y_mean - y_train_dev)
            train_error = float(train_abs.mean() if metric == "mae" else np.sqrt((train_abs ** 2).mean()))
            return {"train_error": train_error, "train_dev_abs": dev_abs}
        conf, pred = torch.softmax(net(xd), dim=1).max(1)
        train_conf, train_pred = torch.softmax(net(xt), dim=1).max(1)
        return {"confidence": conf.numpy(), "wrong": pred.numpy() != y_train_dev,
                "train_error": float(np.mean(train_pred.numpy() != y_train)),
                "train_plug": float(np.mean(1 - train_conf.numpy()))}


def two_gaussians(mu: float, d: int):
    """Classes at -mu and +mu on feature 0, unit variance, d - 1 noise features: Bayes error Phi(-mu)."""
    def draw(rng, n):
        y = rng.integers(0, 2, n)
        x = rng.normal(size=(n, d))
        x[:, 0] += np.where(y == 1, mu, -mu)
        return x, y
    return draw, float(norm.cdf(-mu))


def k_gaussians(k: int, d: int):
    """k classes with unit-variance Gaussian inputs around random centres in 2 of d features."""
    centres = np.random.default_rng(1).normal(size=(k, 2)) * 1.5

    def draw(rng, n):
        y = rng.integers(0, k, n)
        x = rng.normal(size=(n, d))
        x[:, :2] += centres[y]
        return x, y

    x, _ = draw(np.random.default_rng(3), 400_000)
    logp = -0.5 * ((x[:, None, :2] - centres[None]) ** 2).sum(-1)
    post = np.exp(logp - logp.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    return draw, float(np.mean(1 - post.max(1)))


def nonlinear_logistic(d: int):
    """P(y=1 | x) = sigmoid(3 sin(x0) x1 + x2), d - 3 noise features."""
    def posterior(x):
        return 1 / (1 + np.exp(-3 * np.sin(x[:, 0]) * x[:, 1] - x[:, 2]))

    def draw(rng, n):
        x = rng.normal(size=(n, d))
        return x, (rng.random(n) < posterior(x)).astype(np.int64)

    p = posterior(np.random.default_rng(5).normal(size=(400_000, d)))
    return draw, float(np.mean(np.minimum(p, 1 - p)))


def rings(k: int, d: int, noise: float):
    """dlexp's synthetic task (data=synthetic): sectors and rings of a rotated plane, labels flipped with
    probability `noise` to another class: Bayes error = noise."""
    from dlexp.data.synthetic import _task, label

    plane, _ = _task(d, 0)

    def draw(rng, n):
        x = rng.normal(size=(n, d))
        y = label(x, plane, k)
        flip = rng.random(n) < noise
        y[flip] = (y[flip] + rng.integers(1, k, int(flip.sum()))) % k
        return x, y
    return draw, noise


def friedman(noise: float, d: int, metric: str):
    """scikit-learn's Friedman #1 regression with Gaussian noise: Bayes RMSE = noise, MAE = noise sqrt(2/pi)."""
    def draw(rng, n):
        return make_friedman1(n, n_features=d, noise=noise, random_state=int(rng.integers(2**31)))
    return draw, noise * (np.sqrt(2 / np.pi) if metric == "mae" else 1.0)


def linear(k: int, d: int, noise: float):
    def draw(rng, n):
        x = rng.normal(size=(n, d))
        return x, x[:, :k].sum(1) + noise * rng.normal(size=n)
    return draw, noise


# name, task, metric, (draw, truth), n_train, n_train_dev
SETTINGS = [
    ("2 classes, 1 informative + 9 noise features", "classification", "error_rate", two_gaussians(1.6, 10), 4200, 1800),
    ("2 classes, 1 informative + 9 noise features", "classification", "error_rate", two_gaussians(1.0, 10), 4200, 1800),
    ("2 classes, 1 informative + 29 noise features", "classification", "error_rate", two_gaussians(1.0, 30), 4200, 1800),
    ("2 classes, 1 informative + 9 noise, small", "classification", "error_rate", two_gaussians(1.0, 10), 500, 200),
    ("2 classes, nearly separable", "classification", "error_rate", two_gaussians(2.33, 10), 4200, 1800),
    ("4 classes, 2 informative + 6 noise features", "classification", "error_rate", k_gaussians(4, 8), 4200, 1800),
    ("4 classes, 2 informative + 6 noise, small", "classification", "error_rate", k_gaussians(4, 8), 1000, 400),
    ("2 classes, non-linear posterior, 6 features", "classification", "error_rate", nonlinear_logistic(6), 4200, 1800),
    ("3 classes, data=synthetic's rings, 10 features", "classification", "error_rate", rings(3, 10, 0.1), 4200, 1800),
    ("4 classes, data=synthetic's defaults", "classification", "error_rate", rings(4, 10, 0.05), 10000, 2000),
    ("regression, Friedman #1, noise 1, 10 features", "regression", "rmse", friedman(1.0, 10, "rmse"), 4200, 1800),
    ("regression, Friedman #1, noise 3, small", "regression", "rmse", friedman(3.0, 10, "rmse"), 500, 200),
    ("regression, linear 5 of 20 features, noise 0.5", "regression", "rmse", linear(5, 20, 0.5), 4200, 1800),
    ("regression, Friedman #1, noise 1, MAE", "regression", "mae", friedman(1.0, 10, "mae"), 4200, 1800),
]


def coverage(draw, truth: float, *, task: str, metric: str, n_train: int, n_train_dev: int, reps: int,
             cfg, seed: int = 100) -> dict:
    """Per bracket ("boosting": gradient boosting alone; "combined": with the network, as a run reports it):
    coverage, how often each end misses, mean ends and width."""
    found = {"boosting": [], "combined": []}
    for rep in range(reps):
        rng = np.random.default_rng(seed + rep)
        x_tr, y_tr = draw(rng, n_train)
        x_td, y_td = draw(rng, n_train_dev)
        lo, hi, model = bracket(x_tr, y_tr, x_td, y_td, task=task, metric=metric, seed=rep)
        found["boosting"].append((lo, hi))
        reference = (lo, hi, errors(model, Split(x_td, y_td), task=task, metric=metric))
        net = network(cfg, x_tr, y_tr, x_td, y_td, task=task, metric=metric, seed=rep)
        if task == "classification":
            own = network_bracket(task, confidence=net["confidence"], wrong=net["wrong"])
        else:
            own = network_bracket(task, metric, train_dev_abs=net["train_dev_abs"], train_error=net["train_error"])
        found["combined"].append(combine(task, reference, own))
    out = {}
    for name, pairs in found.items():
        lows, highs = np.array(pairs).T
        out[name] = {"coverage": float(np.mean((lows <= truth) & (truth <= highs))),
                     "below": float(np.mean(lows > truth)), "above": float(np.mean(highs < truth)),
                     "lower": float(lows.mean()), "upper": float(highs.mean()), "width": float((highs - lows).mean())}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="repetitions per setting")
    parser.add_argument("--settings", type=str, default=None,
                        help="comma-separated setting numbers (0-based) to run; default all")
    parser.add_argument("--epochs", type=int, default=None,
                        help="train the network this many epochs instead of dlexp's default (an under-trained one)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # many small networks: one thread each is fastest, and kind to a shared machine
    cfg = default_network_config()
    if args.epochs:
        cfg.trainer.max_epochs = args.epochs
    chosen = range(len(SETTINGS)) if args.settings is None else [int(i) for i in args.settings.split(",")]
    print(f"network: {cfg.model.name} hidden={list(cfg.model.hidden)}, {cfg.optimizer.name} lr={cfg.optimizer.lr}, "
          f"{cfg.trainer.max_epochs} epochs, batch {cfg.data.batch_size} "
          f"({'--epochs given' if args.epochs else 'dlexp train data=table defaults'})")
    print(f"{'setting':49s} {'n train/train-dev':>17s} {'metric':>10s} {'Bayes':>7s} "
          f"{'boosting alone':>17s} {'width':>7s} {'cover':>6s} {'with the network':>17s} {'width':>7s} {'cover':>6s}")
    short = []
    start = time.time()
    for i in chosen:
        name, task, metric, (draw, truth), n_tr, n_td = SETTINGS[i]
        r = coverage(draw, truth, task=task, metric=metric, n_train=n_tr, n_train_dev=n_td, reps=args.reps, cfg=cfg)
        fmt = (lambda v: f"{v:.3f}") if metric == "error_rate" else (lambda v: f"{v:.2f}")
        cells = "".join(f" {'[' + fmt(b['lower']) + ', ' + fmt(b['upper']) + ']':>17s} {fmt(b['width']):>7s} "
                        f"{b['coverage']:>6.0%}" for b in (r["boosting"], r["combined"]))
        print(f"{name:49s} {f'{n_tr}/{n_td}':>17s} {metric:>10s} {fmt(truth):>7s}{cells}", flush=True)
        c = r["combined"]
        if c["coverage"] < 0.9:
            short.append(f"{name} ({c['coverage']:.0%}: lower end above the truth in {c['below']:.0%}, "
                         f"upper end below it in {c['above']:.0%})")
    print(f"\n{args.reps} repetitions per setting, {time.time() - start:.0f} s")
    if short:
        print("combined bracket below the 90% target: " + "; ".join(short))
    return 0


if __name__ == "__main__":
    sys.exit(main())
