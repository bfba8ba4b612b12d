"""The bare PyTorch loop that `train_overhead.py` holds dlexp against: the same data, model and work.

Same data (dlexp's synthetic generator, numpy only; or, with --npz, dlexp's reader of an .npz of images),
same network (the MLP; or, with --npz, dlexp's CNN), Adam, batch size and shuffling by sliced index, the
data moved to the device once; a dev-error pass each epoch and a final pass over the four splits, as dlexp
does. No framework.
Usage: python benchmarks/bare_loop.py EPOCHS N_TRAIN N_FEATURES N_CLASSES HIDDEN BATCH [--device cuda]
       [--npz IMAGES.npz --channels 64 128]  (with --npz, N_FEATURES, N_CLASSES and HIDDEN are not used)
"""

import argparse
import time
from types import SimpleNamespace

t0 = time.perf_counter()
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402


def synthetic_splits(n_train, n_features, n_classes):
    from dlexp.data import synthetic

    cfg = SimpleNamespace(n_train=n_train, n_train_dev=2000, n_dev=2000, n_test=2000, n_features=n_features,
                          n_classes=n_classes, label_noise=0.05, shift=0.0, target_fraction=0.0, task_seed=0)
    return synthetic.build(cfg, seed=0)


def npz_splits(path):
    from dlexp.data import npz

    cfg = SimpleNamespace(path=path, x_key="X", y_key="y", n_train=None, train_dev_fraction=0.1,
                          dev_fraction=0.15, test_fraction=0.15)
    return npz.build(cfg, seed=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("epochs", "n_train", "n_features", "n_classes", "hidden", "batch"):
        ap.add_argument(name, type=int)
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto: cuda where there is one (default cpu)")
    ap.add_argument("--npz", default=None, help="images (N x C x H x W) saved with numpy.savez as X and y")
    ap.add_argument("--channels", type=int, nargs="+", default=[32, 64], help="the CNN's channels (with --npz)")
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    torch.manual_seed(0)
    if args.npz:
        from dlexp.models import cnn

        splits = npz_splits(args.npz)
        net = cnn.build(SimpleNamespace(channels=args.channels, kernel=3, batchnorm=True, dropout=0.0),
                        n_classes=splits.n_classes, input_shape=splits.train.x.shape[1:])
    else:
        splits = synthetic_splits(args.n_train, args.n_features, args.n_classes)
        d, k, h = args.n_features, args.n_classes, args.hidden
        net = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, k))
    net = net.to(device)
    x, y = torch.from_numpy(splits.train.x).to(device), torch.from_numpy(splits.train.y).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def error(split, batch=4096):
        with torch.inference_mode():
            net.eval()
            sx, sy = torch.from_numpy(split.x).to(device), torch.from_numpy(split.y).to(device)
            wrong = sum((net(sx[i:i + batch]).argmax(1) != sy[i:i + batch]).sum() for i in range(0, len(sy), batch))
            net.train()
            return float(wrong) / max(1, len(sy))

    for _ in range(args.epochs):
        perm = torch.randperm(len(y)).to(device)
        for i in range(0, len(y), args.batch):
            rows = perm[i:i + args.batch]
            loss = F.cross_entropy(net(x[rows]), y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        print(f"dev_error {error(splits.dev):.4f}", flush=True)
    print({name: error(getattr(splits, name)) for name in ("train", "train_dev", "dev", "test")})
    print(f"bare: {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
