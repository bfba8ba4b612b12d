"""The bare PyTorch loop that `train_overhead.py` holds dlexp against: the same data, model and work.

Same data (dlexp's synthetic generator, numpy only), same MLP, Adam, batch size and shuffling by sliced
index; a dev-error pass each epoch and a final pass over the four splits, as dlexp does. No framework.
Usage: python benchmarks/bare_loop.py EPOCHS N_TRAIN N_FEATURES N_CLASSES HIDDEN BATCH
"""

import sys
import time

t0 = time.perf_counter()
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from dlexp.data import synthetic  # noqa: E402


class Cfg:
    def __init__(self, n_train, n_features, n_classes):
        self.n_train, self.n_train_dev, self.n_dev, self.n_test = n_train, 2000, 2000, 2000
        self.n_features, self.n_classes = n_features, n_classes
        self.label_noise, self.shift, self.target_fraction, self.task_seed = 0.05, 0.0, 0.0, 0


def main():
    epochs, n_train, d, k, hidden, batch = (int(a) for a in sys.argv[1:7])
    torch.manual_seed(0)
    splits = synthetic.build(Cfg(n_train, d, k), seed=0)
    x, y = torch.from_numpy(splits.train.x), torch.from_numpy(splits.train.y)
    net = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, k))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def error(split):
        with torch.inference_mode():
            net.eval()
            out = (net(torch.from_numpy(split.x)).argmax(1) != torch.from_numpy(split.y)).float().mean().item()
            net.train()
            return out

    for _ in range(epochs):
        perm = torch.randperm(len(y))
        for i in range(0, len(y), batch):
            rows = perm[i:i + batch]
            loss = F.cross_entropy(net(x[rows]), y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        print(f"dev_error {error(splits.dev):.4f}", flush=True)
    print({name: error(getattr(splits, name)) for name in ("train", "train_dev", "dev", "test")})
    print(f"bare: {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
