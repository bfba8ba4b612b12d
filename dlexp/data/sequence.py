"""Synthetic token sequences whose label depends on two tokens far apart.

Each sequence has a length between seq_len // 2 + 1 and seq_len (then 0-padding up to seq_len) of tokens
drawn from 1..vocab-1. The label is 1 when the first token plus the token at position seq_len // 2 exceeds
`vocab` (about half the sequences); every other token is distraction. A model must carry the first token
across seq_len // 2 steps (a recurrent network) or attend from one position to the other (self-attention).
`label_noise` flips that share of labels, which makes the Bayes error exactly `label_noise`.
"""

from __future__ import annotations

import numpy as np

from dlexp.data import Split, Splits


def _draw(rng, n: int, cfg) -> Split:
    far = cfg.seq_len // 2
    x = rng.integers(1, cfg.vocab, size=(n, cfg.seq_len))
    total = x[:, 0] + x[:, far]
    tie = total == cfg.vocab  # a sum exactly at the threshold is moved off it: every label is clear-cut
    x[tie, far] += np.where(x[tie, far] < cfg.vocab - 1, 1, -1)
    y = (x[:, 0] + x[:, far] > cfg.vocab).astype(np.int64)
    lengths = rng.integers(far + 1, cfg.seq_len + 1, size=n)
    x[np.arange(cfg.seq_len)[None, :] >= lengths[:, None]] = 0
    flip = rng.random(n) < cfg.label_noise
    y[flip] = 1 - y[flip]
    return Split(x.astype(np.int64), y)


def build(cfg, *, seed: int) -> Splits:
    rng = np.random.default_rng(seed)
    return Splits(train=_draw(rng, cfg.n_train, cfg), train_dev=_draw(rng, cfg.n_train_dev, cfg),
                  dev=_draw(rng, cfg.n_dev, cfg), test=_draw(rng, cfg.n_test, cfg),
                  n_classes=2, bayes_error=float(cfg.label_noise), vocab=int(cfg.vocab))
