"""Synthetic token sequences whose label depends on two tokens far apart.

Each sequence has a length between seq_len // 2 + 1 and seq_len (then 0-padding up to seq_len) of tokens
drawn from 1..vocab-1. The label is 1 when the first token equals the token at position seq_len // 2, which
half the sequences are made to satisfy; everything else is distraction. A model must carry the first token
across seq_len // 2 steps (a recurrent network) or attend from one position to the other (self-attention).
`label_noise` flips that share of labels, which makes the Bayes error exactly `label_noise`.
"""

from __future__ import annotations

import numpy as np

from dlexp.data import Split, Splits


def _draw(rng, n: int, cfg) -> Split:
    far = cfg.seq_len // 2
    x = rng.integers(1, cfg.vocab, size=(n, cfg.seq_len))
    same = rng.random(n) < 0.5
    x[same, far] = x[same, 0]
    # a drawn token equal by chance counts as "same" too: the label is what the sequence shows
    y = (x[:, far] == x[:, 0]).astype(np.int64)
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
