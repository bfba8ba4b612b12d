"""A small convolutional network: per entry of `channels`, conv -> BatchNorm -> ReLU -> 2x2 max-pool, then a
dropout and a linear head. Flat square inputs (digits: 64 values) are seen as one-channel images (1 x 8 x 8)."""

from __future__ import annotations

import math

from torch import nn

from dlexp.errors import ConfigError


def image_shape(input_shape: tuple[int, ...], data_name: str) -> tuple[int, int, int]:
    if len(input_shape) == 3:
        return tuple(input_shape)  # type: ignore[return-value]
    if len(input_shape) == 1 and math.isqrt(input_shape[0]) ** 2 == input_shape[0]:
        side = math.isqrt(input_shape[0])
        return (1, side, side)
    raise ConfigError(f"model=cnn needs images (N x C x H x W, or square flat rows like data=digits); "
                      f"data={data_name} gives inputs of shape {tuple(input_shape)}")


def build(cfg, *, n_classes: int, input_shape: tuple[int, ...], data_name: str = "the data", **_) -> nn.Module:
    c, h, w = image_shape(input_shape, data_name)
    layers: list[nn.Module] = [nn.Unflatten(1, (c, h, w))] if len(input_shape) == 1 else []
    for out in cfg.channels:
        layers += [nn.Conv2d(c, out, cfg.kernel, padding=cfg.kernel // 2, bias=not cfg.batchnorm)]
        if cfg.batchnorm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU())
        if h >= 2 and w >= 2:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        c = out
    layers.append(nn.Flatten())
    if cfg.dropout > 0:
        layers.append(nn.Dropout(cfg.dropout))
    layers.append(nn.Linear(c * h * w, n_classes))
    return nn.Sequential(*layers)
