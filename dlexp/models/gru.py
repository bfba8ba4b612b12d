"""A recurrent network over token sequences (0 = padding): embedding -> GRU or LSTM -> the output at each
sequence's last real token -> linear head. A unidirectional RNN's output there never saw the padding.
As a language model (data.task=lm) the head reads the output at every position: the next token's logits."""

from __future__ import annotations

import torch
from torch import nn


class Recurrent(nn.Module):
    def __init__(self, cfg, vocab: int, n_classes: int, lm: bool = False):
        super().__init__()
        self.lm = lm
        cell = {"gru": nn.GRU, "lstm": nn.LSTM}[str(getattr(cfg.cell, "value", cfg.cell))]
        self.embed = nn.Embedding(vocab, cfg.embed, padding_idx=0)
        self.rnn = cell(cfg.embed, cfg.hidden_size, num_layers=cfg.layers, batch_first=True,
                        dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size, n_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, L) int64 -> (B, n_classes)
        out, _ = self.rnn(self.embed(tokens))                 # (B, L, hidden)
        if self.lm:
            return self.head(self.drop(out))                   # (B, L, vocab)
        last = (tokens != 0).sum(dim=1).clamp(min=1) - 1       # index of each sequence's last real token
        state = out[torch.arange(len(tokens), device=tokens.device), last]
        return self.head(self.drop(state))


def build(cfg, *, n_classes: int, vocab: int, task: str = "classification", **_) -> nn.Module:
    return Recurrent(cfg, vocab, n_classes, lm=task == "lm")
