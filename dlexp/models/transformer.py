"""A self-attention encoder over token sequences (0 = padding): embedding + sinusoidal positional encoding ->
`layers` encoder layers with `heads` heads (padding masked out of attention) -> mean over the real tokens ->
linear head. As a language model (data.task=lm) attention is causal (each token sees only those before it)
and the head reads every position: the next token's logits."""

from __future__ import annotations

import math

import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self, cfg, vocab: int, n_classes: int, max_len: int, lm: bool = False):
        super().__init__()
        self.lm = lm
        self.embed = nn.Embedding(vocab, cfg.d_model, padding_idx=0)
        position = torch.arange(max_len)[:, None]
        freq = torch.exp(torch.arange(0, cfg.d_model, 2) * (-math.log(10000.0) / cfg.d_model))
        pe = torch.zeros(max_len, cfg.d_model)
        pe[:, 0::2] = torch.sin(position * freq)
        pe[:, 1::2] = torch.cos(position * freq)[:, : cfg.d_model // 2]
        self.register_buffer("pe", pe, persistent=False)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ff, cfg.dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.head = nn.Linear(cfg.d_model, n_classes)
        self.scale = math.sqrt(cfg.d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, L) int64 -> (B, n_classes)
        pad = tokens == 0                                      # (B, L) True where padding
        h = self.embed(tokens) * self.scale + self.pe[: tokens.shape[1]]
        if self.lm:
            causal = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1], device=tokens.device)
            h = self.encoder(h, mask=causal, src_key_padding_mask=pad, is_causal=True)
            return self.head(h)                                # (B, L, vocab)
        h = self.encoder(h, src_key_padding_mask=pad)          # (B, L, d_model)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        pooled = (h * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return self.head(pooled)


def build(cfg, *, n_classes: int, vocab: int, input_shape: tuple[int, ...], task: str = "classification",
          **_) -> nn.Module:
    return Encoder(cfg, vocab, n_classes, max_len=int(input_shape[0]), lm=task == "lm")
